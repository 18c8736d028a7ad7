"""What `austack bench` shows at the end: the per-AU table, and a leaderboard after a glob
(the progress while it runs is `austack.progress.BenchView`)."""
from __future__ import annotations


def print_results(console, rows) -> None:
    """Per-AU test F1 (%) of each fold and their mean; failed folds listed under the table."""
    from rich.table import Table

    from austack.metrics import fold_summary
    from austack.results.schema import scores_of

    ok = [r for r in rows if r is not None and r.status == "ok"]
    if ok:
        r0 = ok[0]
        on = f"{r0.source_dataset} -> {r0.dataset} ({r0.test_split})" if r0.cross else r0.dataset
        table = Table(title=f"{on} {r0.backbone} + {r0.loss}: test F1 (%)")
        table.add_column("AU", no_wrap=True)
        for r in ok:
            table.add_column(f"fold {r.fold}", justify="right", no_wrap=True)
        table.add_column("mean", justify="right", no_wrap=True, style="bold")
        summary = fold_summary([scores_of(r) for r in ok])   # the one fold-mean definition
        for i, au in enumerate(ok[0].aus):
            table.add_row(f"AU{au}", *(f"{100 * r.f1[i]:.1f}" for r in ok), f"{100 * summary.f1_mean[i]:.1f}")
        table.add_section()
        val = sum(r.val_f1_mean for r in ok) / len(ok)
        for name, values, mean in (("Avg. F1", [r.f1_mean for r in ok], summary.avg_f1_mean),
                                   ("Avg. accuracy", [r.accuracy_mean for r in ok], summary.avg_accuracy_mean),
                                   ("val F1 (selection)", [r.val_f1_mean for r in ok], val)):
            table.add_row(name, *(f"{100 * v:.1f}" for v in values), f"{100 * mean:.1f}")
        table.add_row("best epoch", *(str(r.best_epoch) for r in ok), "")
        console.print(table)
        if not ok[0].comparable:
            console.print("[yellow]debug subsampling (--limit-train): not comparable with other rows[/yellow]")
    for r in rows:
        if r is not None and r.status == "error":
            on = f" on {r.dataset} ({r.test_split})" if r.cross else ""
            console.print(f"[red]fold {r.fold}{on} failed:[/red] {r.error}")


def print_table_leaderboard(outcomes) -> None:
    """After a recipe glob: the leaderboard of the datasets those recipes ran on."""
    from austack.results.leaderboard import leaderboards_from_db, print_rich

    for db in dict.fromkeys(o.db for o in outcomes if o.db is not None):
        datasets = {r.dataset for o in outcomes for r in o.rows if r is not None}
        for dataset in sorted(datasets):
            print_rich(leaderboards_from_db(db, dataset, published=True, show_all=True))
