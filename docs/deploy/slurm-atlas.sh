#!/bin/bash
# An atlas as a Slurm array: 8 tasks, each computing part $SLURM_ARRAY_TASK_ID of 8, then a merge job that
# runs when all of them succeeded (docs/guides/distributed.md). Paths must be on the cluster's shared file
# system. Submit with:
#
#   jid=$(sbatch --parsable slurm-atlas.sh)
#   sbatch --dependency=afterok:$jid --job-name=crp-merge --wrap 'crp merge parts/atlas-*.json --out atlas.json'
#
#SBATCH --job-name=crp-atlas
#SBATCH --array=0-7
#SBATCH --cpus-per-task=4
#SBATCH --mem=8G
#SBATCH --time=12:00:00
#SBATCH --output=logs/atlas-%A_%a.out
set -euo pipefail
PARTS=8
mkdir -p parts logs
exec crp --threads "$SLURM_CPUS_PER_TASK" atlas \
  --model "$PWD/model" --data "$PWD/patches" --target 1 \
  --shard "$SLURM_ARRAY_TASK_ID/$PARTS" --out "parts/atlas-$SLURM_ARRAY_TASK_ID.json"
