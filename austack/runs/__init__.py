"""`austack.runs`: what a benchmark run is on disk, below the engine that writes it and the
results, inference and studies that read it: the recipe schema (`config`), the shipped
recipes (`recipes`), the run-directory format (`rundir`) and where a detector is
(`locate`)."""
