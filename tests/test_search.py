"""``dse search``: pymoo and optuna engines behind one registry; seeds repeat; optuna studies
persist and resume; every evaluated design is written with its Pareto mark."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import moocore
import numpy as np
import pytest

from dse.catalog.workloads import load_workload
from dse.errors import InputError
from dse.export import read_results
from dse.pareto import hypervolume, nondominated, reference_point
from dse.search import Engine, Problem, create_engine, engine_names, register_engine, run_search
from dse.search.registry import ENGINES, Record
from dse.space import load_space

SPACE = """
name = "search test"
[dimensions]
node = ["n5", "n4", "n3", "n2"]
compute_units = { low = 96, high = 192, step = 16 }
clock_ghz = { low = 1.4, high = 2.2, step = 0.2 }
hbm_generation = ["hbm3e", "hbm4"]
hbm_stacks = { low = 4, high = 8 }
num_chips = { low = 1024, high = 16384, log = true }
[constraints]
max_training_days = 120
"""
OBJECTIVES = ["cost_usd", "energy_mwh", "training_days"]


@pytest.fixture
def space(tmp_path: Path) -> Path:
    path = tmp_path / "space.toml"
    path.write_text(SPACE)
    return path


def search(dse: Callable[..., Any], space: Path, out: Path, *args: str) -> Any:
    result = dse("search", space, "--workload", "llama3.1-70b", "--out", out, "--quiet",
                 "--format", "json", *args)  # fmt: skip
    assert result.code == 0, result.err
    return result.json()


ENGINE_ARGS = {
    "pymoo": ("--engine", "pymoo", "--pop-size", "20"),
    "pymoo-nsga3": ("--engine", "pymoo", "--algorithm", "nsga3", "--pop-size", "20"),
    "optuna": ("--engine", "optuna", "--pop-size", "20"),
    "optuna-tpe": ("--engine", "optuna", "--sampler", "tpe", "--batch-size", "10"),
}


@pytest.mark.parametrize("engine", list(ENGINE_ARGS))
def test_same_seed_repeats_and_another_differs(
    dse: Callable[..., Any], space: Path, tmp_path: Path, engine: str
) -> None:
    evals = "50" if engine == "optuna-tpe" else "100"
    files = [tmp_path / f"{name}.csv" for name in ("a", "b", "c")]
    for out, seed in zip(files, ("7", "7", "8"), strict=True):
        summary = search(dse, space, out, *ENGINE_ARGS[engine], "--evals", evals, "--seed", seed)
        assert summary["rows"] == int(evals)  # exactly the budget, every evaluated design
    assert files[0].read_text() == files[1].read_text()
    assert files[0].read_text() != files[2].read_text()
    frame, meta = read_results(files[0])
    assert meta["engine"] == engine.split("-")[0] and meta["seed"] == 7
    feasible = frame["feasible"].to_numpy(dtype=bool)
    expected = np.zeros(len(frame), dtype=bool)
    expected[feasible] = moocore.is_nondominated(
        frame.loc[feasible, OBJECTIVES].to_numpy(), keep_weakly=True
    )
    assert np.array_equal(frame["pareto"].to_numpy(dtype=bool), expected)
    assert expected.any()


def test_optuna_study_resumes_and_grows(
    dse: Callable[..., Any], space: Path, tmp_path: Path
) -> None:
    import optuna

    storage = f"sqlite:///{tmp_path / 'study.db'}"
    first, second = tmp_path / "first.parquet", tmp_path / "second.parquet"
    args = ("--engine", "optuna", "--storage", storage, "--study", "grow", "--evals", "60",
            "--pop-size", "20", "--seed", "1")  # fmt: skip
    assert search(dse, space, first, *args)["trials"] == 60
    summary = search(dse, space, second, *args)
    assert summary["trials"] == 120 and summary["trials_before"] == 60
    study = optuna.load_study(study_name="grow", storage=storage)
    trials = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(trials) == 120
    assert all(len(t.constraints) > 0 and "design" in t.user_attrs for t in trials)
    a, _ = read_results(first)
    b, _ = read_results(second)
    assert len(b) == 120
    # The study's first 60 trials re-evaluate to the first run's rows.
    assert np.allclose(b[OBJECTIVES].to_numpy()[:60], a[OBJECTIVES].to_numpy())
    fronts = [f.loc[f["pareto"], OBJECTIVES].to_numpy() for f in (a, b)]
    reference = reference_point(np.concatenate(fronts))
    assert hypervolume(fronts[1], reference) >= hypervolume(fronts[0], reference)


@pytest.mark.parametrize("sampler", ["nsga2", "random"])
def test_optuna_study_is_dashboard_ready(
    dse: Callable[..., Any], space: Path, tmp_path: Path, sampler: str
) -> None:
    """What optuna-dashboard reads: metric names, real parameter values in proper
    distributions, and constraints, so that only feasible designs count as best."""
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    storage = f"sqlite:///{tmp_path / 'study.db'}"
    out = tmp_path / "out.parquet"
    search(dse, space, out, "--engine", "optuna", "--sampler", sampler, "--storage", storage,
           "--study", "dash", "--evals", "30", "--pop-size", "10")  # fmt: skip
    study = optuna.load_study(study_name="dash", storage=storage)
    assert study.metric_names == OBJECTIVES
    trial = study.trials[0]
    assert not any(name.endswith("_level") for name in trial.params)
    assert trial.distributions["compute_units"] == IntDistribution(96, 192, step=16)
    assert trial.distributions["clock_ghz"] == FloatDistribution(1.4, 2.2, step=0.2)
    assert trial.distributions["hbm_stacks"] == IntDistribution(4, 8)
    assert trial.distributions["num_chips"] == CategoricalDistribution(
        [1024, 2048, 4096, 8192, 16384]
    )
    assert trial.distributions["node"] == CategoricalDistribution(["n5", "n4", "n3", "n2"])
    frame, _ = read_results(out)
    for t in study.trials:
        row = frame.iloc[t.number]
        assert t.params["compute_units"] == row["compute_units"]
        assert t.params["clock_ghz"] == pytest.approx(row["clock_ghz"])
        assert t.params["num_chips"] == row["num_chips"] and t.params["node"] == row["node"]
        assert isinstance(t.system_attrs["constraints"], list)
        assert (max(t.system_attrs["constraints"]) <= 0) == row["feasible"]
    best = study.best_trials
    assert best and all(max(t.system_attrs["constraints"]) <= 0 for t in best)
    assert len(best) == int(frame["pareto"].sum())


def _dashboard_study(storage: str, name: str) -> dict[str, Any]:
    """The study as optuna-dashboard's own web API serves it (``GET /api/studies/ID``)."""
    import io
    import json
    from wsgiref.util import setup_testing_defaults

    import optuna_dashboard

    from dse.search.shared_study import open_storage

    opened = open_storage(storage)
    environ: dict[str, Any] = {}
    setup_testing_defaults(environ)
    environ["PATH_INFO"] = f"/api/studies/{opened.get_study_id_from_name(name)}"
    environ["wsgi.input"] = io.BytesIO()
    status: list[str] = []
    body = optuna_dashboard.wsgi(opened)(environ, lambda s, headers, *_: status.append(s))
    assert status == ["200 OK"], status
    return dict(json.loads(b"".join(body)))


def test_dashboard_lists_only_feasible_designs_as_best(
    dse: Callable[..., Any], space: Path, tmp_path: Path
) -> None:
    """optuna-dashboard ranks best trials by values alone (constraints ignored); the view
    ``<study>-dashboard`` that dse keeps beside a stored study makes its best trials exactly
    the results file's Pareto rows, and still lists every infeasible design with its reasons."""
    pytest.importorskip("optuna_dashboard")
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    frames = []
    for run in ("first", "second"):  # the second run adds trials: the view follows
        out = tmp_path / f"{run}.parquet"
        search(dse, space, out, "--engine", "optuna", "--storage", storage, "--study", "dash",
               "--evals", "40", "--pop-size", "10", "--seed", "3")  # fmt: skip
        frames.append(read_results(out)[0])
    frame = frames[-1]
    assert len(frame) == 80 and 0 < frame["feasible"].sum() < 80
    searched = _dashboard_study(storage, "dash")
    assert len(searched["trials"]) == 80  # the searched study itself is left as it was
    # (its best trials, as the dashboard ranks them, include infeasible designs: 2 of 14 here)
    view = _dashboard_study(storage, "dash-dashboard")
    assert view["objective_names"] == OBJECTIVES
    trials = view["trials"]
    assert [int(_attrs(t)["dse_trial"]) for t in trials] == list(range(80))
    for trial, (_, row) in zip(trials, frame.iterrows(), strict=True):
        params = {p["name"]: p["param_external_value"] for p in trial["params"]}
        assert params["compute_units"] == str(row["compute_units"])
        assert params["node"] == row["node"]
        assert float(params["clock_ghz"]) == pytest.approx(row["clock_ghz"])
        assert params["clock_ghz"] in {"1.4", "1.6", "1.8", "2.0", "2.2"}  # not 1.5999999999999999
        attrs = _attrs(trial)
        assert attrs["feasible"] == str(bool(row["feasible"]))
        assert (max(trial["constraints"]) <= 0) == row["feasible"]
        if row["feasible"]:
            assert trial["state"] == "Complete"
            assert trial["values"] == pytest.approx(row[OBJECTIVES].to_list())
        else:  # shown, with why, but never ranked: no values
            assert trial["state"] == "Fail" and "values" not in trial
            assert attrs["infeasible_because"]
            assert float(attrs["cost_usd"]) == pytest.approx(row["cost_usd"])
            violated = [k for k in attrs if k.startswith("g_")]
            assert violated and all(row[k] > 0 for k in violated)
    best = sorted(int(_attrs(t)["dse_trial"]) for t in view["best_trials"])
    assert best == list(np.flatnonzero(frame["pareto"].to_numpy()))
    assert all(max(t["constraints"]) <= 0 for t in view["best_trials"])


def test_dashboard_view_never_replaces_a_study_of_the_users(
    dse: Callable[..., Any], space: Path, tmp_path: Path
) -> None:
    import optuna

    storage = f"sqlite:///{tmp_path / 'study.db'}"
    mine = optuna.create_study(storage=storage, study_name="dash-dashboard")
    mine.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=2)
    args = ("--engine", "optuna", "--storage", storage, "--study", "dash", "--evals", "10")
    result = dse("search", space, "--workload", "llama3.1-70b", "--out", tmp_path / "a.csv",
                 "--quiet", *args)  # fmt: skip
    assert result.code == 0, result.err
    assert "no dashboard view written" in result.err
    kept = optuna.load_study(study_name="dash-dashboard", storage=storage)
    assert [t.params for t in kept.trials] == [t.params for t in mine.trials]


def _attrs(trial: dict[str, Any]) -> dict[str, str]:
    return {a["key"]: a["value"] for a in trial["user_attrs"]}


def test_optuna_study_of_another_problem_is_refused(
    dse: Callable[..., Any], space: Path, tmp_path: Path
) -> None:
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    args = ("--engine", "optuna", "--storage", storage, "--study", "s", "--evals", "5")
    search(dse, space, tmp_path / "a.csv", *args)
    result = dse("search", space, "--workload", "llama3.1-8b", "--out", tmp_path / "b.csv", *args)
    assert result.code == 2 and "--study: expected a study of this space" in result.err
    assert not (tmp_path / "b.csv").exists()


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--engine", "pymoo", "--algorithm", "simplex"), "--algorithm: expected one of"),
        (("--engine", "pymoo", "--storage", "sqlite:///x.db"), "--storage: expected only with"),
        (("--engine", "optuna", "--algorithm", "nsga2"), "--algorithm: expected only with"),
        (("--engine", "optuna", "--sampler", "cmaes"), "--sampler: expected one of"),
        (("--engine", "optuna", "--storage", "nosuchdb://x"), "--storage: expected"),
        (("--engine", "pymoo", "--evals", "0"), "--evals: expected"),
    ],
)
def test_bad_options_are_one_line(
    dse: Callable[..., Any], space: Path, tmp_path: Path, args: tuple[str, ...], fragment: str
) -> None:
    out = tmp_path / "out.csv"
    result = dse("search", space, "--workload", "llama3.1-70b", "--out", out, *args)
    assert result.code == 2
    assert result.err.count("\n") == 1 and fragment in result.err, result.err
    assert not out.exists() and not list(tmp_path.glob(".out.csv*"))


class CornerEngine(Engine):
    """A minimal engine: every batch is the lowest levels plus random rows."""

    name = "corner"

    def run(self, problem: Problem, evals: int, seed: int, record: Record) -> dict[str, Any]:
        rng = np.random.default_rng(seed)
        X = rng.integers(0, problem.space.radices, size=(evals, problem.n_var))
        X[0] = 0
        record(problem.evaluate(X))
        return {"kind": "corner"}


def test_a_trial_finished_elsewhere_is_dropped_not_fatal(space: Path) -> None:
    """A shared study's trial can be failed by another worker (stale heartbeat on a loaded
    machine) while this worker suggests its design: it is dropped and the rest of the batch is
    evaluated and told; a batch finished entirely elsewhere evaluates nothing."""
    import optuna
    from optuna.trial import TrialState

    from dse.search.optuna_engine import OptunaEngine, _directions

    problem = Problem(load_space(space), load_workload("llama3.1-70b"))
    engine = OptunaEngine(pop_size=4)
    free = engine.free_dimensions(problem)
    dims = problem.space.dimensions
    maximize = np.array([o.maximize for o in problem.space.objectives])
    study = optuna.create_study(directions=_directions(problem))
    trials = [study.ask() for _ in range(3)]
    study._storage.set_trial_state_values(trials[1]._trial_id, TrialState.FAIL)
    evaluation = engine.evaluate_and_tell(study, problem, trials, dims, free, maximize)
    assert evaluation is not None and evaluation.X.shape[0] == 2
    states = [t.state for t in study.get_trials(deepcopy=False)]
    assert states == [TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE]
    gone = study.ask()
    study._storage.set_trial_state_values(gone._trial_id, TrialState.FAIL)
    assert engine.evaluate_and_tell(study, problem, [gone], dims, free, maximize) is None


def test_registry_runs_any_engine(
    space: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(ENGINES, "corner", CornerEngine)
    assert {"pymoo", "optuna", "corner"} <= set(engine_names())
    register_engine("corner", CornerEngine)
    problem = Problem(load_space(space), load_workload("llama3.1-70b"))
    out = tmp_path / "corner.parquet"
    summary = run_search(problem, create_engine("corner"), out, {}, evals=30, seed=0)
    frame, meta = read_results(out)
    assert summary.rows == len(frame) == 30 and meta["kind"] == "corner"
    F = frame[OBJECTIVES].to_numpy()
    assert np.array_equal(frame["pareto"].to_numpy(), nondominated(F, frame["feasible"].to_numpy()))
    with pytest.raises(InputError, match=r"^engine: expected one of"):
        create_engine("simulated-annealing")
