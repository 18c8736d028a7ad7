"""Studies: grids of recorded runs answered as tables and pictures.

`noise` (does a loss resist label noise? synthetic data with known clean labels), `sweep` (a
grid over any recipe or loss option), `plots` / `au_plots` / `embeddings` (the figures, with
matplotlib), `report` (each study's CSV files and README.md), `noisy_scoring` (the test split
scored against noisy labels too). Every run goes through `austack.engine.run_and_record`, so
a study is resumed by running it again: folds already recorded are reused.
"""
