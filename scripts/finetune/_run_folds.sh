# Sourced by scripts/finetune/<dataset>.sh after it sets DATASET, CONFIG_NAME, FOLDS, SPLITS_DEFAULT.
# Fine-tunes every fold with torchrun, then pools the folds' test predictions (tools.pool_folds).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../_launch.sh"   # ROOT, SCRIPT, prepare_launch, run_entry_point

usage() {
  cat <<USAGE
usage: [VAR=value ...] bash $SCRIPT [extra run_finetune.py flags]

Fine-tunes SVFAP on ${DATASET} over its ${#FOLDS[@]} fold(s) (${FOLDS[*]}), one torchrun per fold:
  torchrun run_finetune.py --config configs/finetune/${CONFIG_NAME}_\${MODEL}.yaml \\
      --data_path \$SPLITS/<fold dir> --output_dir \$OUT/<fold dir> --finetune \$PRETRAINED [flags]
then pools the test predictions of all folds:
  python -m tools.pool_folds --data_set ${DATASET} --pred_files \$OUT/<fold dir>/\$PRED_NAME ...
Fold dirs follow the preprocess scripts: split01, split02, ... (numbered folds) or 'official';
the synthetic set's fold_1, fold_2, ... are found too.

environment variables (default):
  MODEL        base | small | tiny (a configs/finetune/<name>_\${MODEL}.yaml must exist)  (base)
  PRETRAINED   pre-trained checkpoint; 'none' = from scratch  (checkpoints/svfap_\${MODEL}_voxceleb2.pth)
  SPLITS       folder of the fold dirs written by preprocess  (${SPLITS_DEFAULT})
  OUT          output root, one sub-folder per fold           (output/finetune/${CONFIG_NAME}_\${MODEL})
  NGPUS        GPUs on this node (torchrun --nproc_per_node) (4)
  TOTAL_BATCH  overall batch size of the recipe               (96)
  UPDATE_FREQ  gradient accumulation steps                    (1)
  BATCH_SIZE   per-GPU batch; default TOTAL_BATCH/(NGPUS*UPDATE_FREQ)
  RUN_FOLDS    subset of folds to train, e.g. "1 3"           (all)
  SKIP_DONE    1 = skip a fold whose \$PRED_NAME exists        (1)
  PRED_NAME    per-video test prediction file of a fold       (test_predictions.csv)
  POOL_PARTIAL 1 = pool the folds present even when some are missing (marked complete: false)  (0)
  MASTER_PORT  torchrun rendezvous port                       (29500)
  PYTHON / TORCHRUN  interpreter and launcher                 (python / torchrun)
Any extra arguments are passed to run_finetune.py and override the config file.
USAGE
}

for a in "$@"; do
  case "$a" in -h|--help) usage; exit 0 ;; esac
done

MODEL="${MODEL:-base}"
case "$MODEL" in base|small|tiny) ;; *) echo "error: MODEL must be base, small or tiny, got '$MODEL'" >&2; exit 2 ;; esac
PRETRAINED="${PRETRAINED:-checkpoints/svfap_${MODEL}_voxceleb2.pth}"
SPLITS="${SPLITS:-$SPLITS_DEFAULT}"
OUT="${OUT:-output/finetune/${CONFIG_NAME}_${MODEL}}"
TOTAL_BATCH="${TOTAL_BATCH:-96}"
SKIP_DONE="${SKIP_DONE:-1}"
PRED_NAME="${PRED_NAME:-test_predictions.csv}"
POOL_PARTIAL="${POOL_PARTIAL:-0}"
RUN_FOLDS="${RUN_FOLDS:-${FOLDS[*]}}"
CONFIG="configs/finetune/${CONFIG_NAME}_${MODEL}.yaml"

prepare_launch

[ -f "$CONFIG" ] || { echo "error: config $CONFIG not found (MODEL=$MODEL has no recipe for ${DATASET})" >&2; exit 2; }
FT_ARGS=()
if [ "$PRETRAINED" != "none" ]; then
  [ -f "$PRETRAINED" ] || { echo "error: PRETRAINED=$PRETRAINED not found (PRETRAINED=none trains from scratch)" >&2; exit 2; }
  FT_ARGS=(--finetune "$PRETRAINED")
fi

fold_dir() {  # 1 -> split01 (the preprocess convention) or fold_1 (the synthetic set); official -> official
  if [[ "$1" =~ ^[0-9]+$ ]]; then
    local d; d="$(printf 'split%02d' "$((10#$1))")"
    if [ ! -d "$SPLITS/$d" ] && [ -d "$SPLITS/fold_$((10#$1))" ]; then d="fold_$((10#$1))"; fi
    printf '%s' "$d"
  else
    printf '%s' "$1"
  fi
}

# what the run will really use: the recipe's model, unless a --model / --batch_size flag overrides it
MODEL_NAME="$("$PYTHON" -c 'import sys; from cli.config import load_config; print(load_config(sys.argv[1]).get("model", "?"))' "$CONFIG")"
prev=""
for a in "$@"; do
  case "$prev" in --model) MODEL_NAME="$a" ;; --batch_size) BATCH_SIZE="$a" ;; esac
  case "$a" in --model=*) MODEL_NAME="${a#--model=}" ;; --batch_size=*) BATCH_SIZE="${a#--batch_size=}" ;; esac
  prev="$a"
done

echo "[$DATASET] model=$MODEL_NAME (MODEL=$MODEL) config=$CONFIG splits=$SPLITS out=$OUT"
echo "[$DATASET] ${NGPUS} process(es) x batch ${BATCH_SIZE} x update_freq ${UPDATE_FREQ} = $((NGPUS * BATCH_SIZE * UPDATE_FREQ)) (recipe total ${TOTAL_BATCH})"
for fold in $RUN_FOLDS; do
  d="$(fold_dir "$fold")"
  if [ -f "$OUT/$d/$PRED_NAME" ] && [ "$SKIP_DONE" = "1" ]; then
    echo "[$DATASET] fold $fold: $OUT/$d/$PRED_NAME exists, skipping (SKIP_DONE=0 to rerun)"
    continue
  fi
  [ -d "$SPLITS/$d" ] || { echo "error: split folder $SPLITS/$d not found (run python -m preprocess.* first or set SPLITS)" >&2; exit 2; }
  mkdir -p "$OUT/$d"
  echo "[$DATASET] fold $fold -> $OUT/$d"
  run_entry_point run_finetune.py "$SPLITS/$d" "$OUT/$d" ${FT_ARGS[@]+"${FT_ARGS[@]}"} "$@"
done

PRED_FILES=()
MISSING=()
for fold in "${FOLDS[@]}"; do
  f="$OUT/$(fold_dir "$fold")/$PRED_NAME"
  if [ -f "$f" ]; then PRED_FILES+=("$f"); else MISSING+=("$f"); fi
done
if [ "${#MISSING[@]}" -gt 0 ]; then
  echo "[$DATASET] ${#MISSING[@]} of ${#FOLDS[@]} fold(s) have not finished: ${MISSING[*]}" >&2
  if [ "$POOL_PARTIAL" != "1" ] || [ "${#PRED_FILES[@]}" -eq 0 ]; then
    echo "[$DATASET] not pooling until every fold has finished (POOL_PARTIAL=1 pools the ones present, marked complete: false)" >&2
    exit 0
  fi
  echo "[$DATASET] POOL_PARTIAL=1: pooling the ${#PRED_FILES[@]} fold(s) present (complete: false)" >&2
fi
POOL_ARGS=()
GROUPS_FILE="$SPLITS/$(fold_dir "${FOLDS[0]}")/video_groups.txt"   # AVCAffe clip -> participant_task
[ -f "$GROUPS_FILE" ] && POOL_ARGS=(--groups_file "$GROUPS_FILE")
"$PYTHON" -m tools.pool_folds --data_set "$DATASET" --expected_folds "${#FOLDS[@]}" --pred_files "${PRED_FILES[@]}" \
  ${POOL_ARGS[@]+"${POOL_ARGS[@]}"} --json "$OUT/pooled_metrics.json" | tee "$OUT/pooled_metrics.txt"
