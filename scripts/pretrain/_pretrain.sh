# Sourced by scripts/pretrain/voxceleb2_{base,small}.sh after they set MODEL_SIZE.
# Single-node masked-autoencoder pre-training with torchrun.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../_launch.sh"   # ROOT, SCRIPT, prepare_launch, run_entry_point

usage() {
  cat <<USAGE
usage: [VAR=value ...] bash $SCRIPT [extra run_pretrain.py flags]

Pre-trains SVFAP-${MODEL_SIZE} on VoxCeleb2 (paper Sec. 4.1) on one node:
  torchrun --nproc_per_node=\$NGPUS run_pretrain.py --config configs/pretrain/voxceleb2_${MODEL_SIZE}.yaml \\
      --data_path \$DATA --output_dir \$OUTPUT --batch_size \$BATCH_SIZE --update_freq \$UPDATE_FREQ [flags]
For several nodes use scripts/slurm/pretrain_multinode.sbatch.

environment variables (default):
  DATA         split file of the clips (python -m preprocess.voxceleb2)  (data/splits/voxceleb2/pretrain.csv)
  OUTPUT       checkpoints and logs                                       (output/pretrain/voxceleb2_${MODEL_SIZE})
  NGPUS        GPUs on this node                                          (4)
  TOTAL_BATCH  overall batch size of the recipe (lr = blr*TOTAL_BATCH/256) (256)
  UPDATE_FREQ  gradient accumulation steps                                (1)
  BATCH_SIZE   per-GPU batch; default TOTAL_BATCH/(NGPUS*UPDATE_FREQ)
  MASTER_PORT  torchrun rendezvous port                                   (29500)
  TORCHRUN     launcher                                                   (torchrun)
Extra arguments go to run_pretrain.py and override the config (e.g. --resume, --epochs).
USAGE
}

for a in "$@"; do
  case "$a" in -h|--help) usage; exit 0 ;; esac
done

DATA="${DATA:-data/splits/voxceleb2/pretrain.csv}"
OUTPUT="${OUTPUT:-output/pretrain/voxceleb2_${MODEL_SIZE}}"
TOTAL_BATCH="${TOTAL_BATCH:-256}"
CONFIG="configs/pretrain/voxceleb2_${MODEL_SIZE}.yaml"
prepare_launch
[ -e "$DATA" ] || { echo "error: DATA=$DATA not found (python -m preprocess.voxceleb2 writes it)" >&2; exit 2; }
mkdir -p "$OUTPUT"
echo "[pretrain] SVFAP-${MODEL_SIZE}: ${NGPUS} GPU(s) x batch ${BATCH_SIZE} x update_freq ${UPDATE_FREQ} = $((NGPUS * BATCH_SIZE * UPDATE_FREQ)) (recipe ${TOTAL_BATCH})"
run_entry_point run_pretrain.py "$DATA" "$OUTPUT" "$@"
