"""The dashboard view of a stored optuna study: only feasible designs can be listed as best.

optuna-dashboard (0.21, the newest release, and its main branch) lists as a multi-objective
study's "best trials" the Pareto front of all COMPLETE trials' values: it shows each trial's
``constraints`` but does not use them there (optuna-dashboard issue #772). An infeasible design
with low cost then counts as best. The study the optimizer uses cannot change (its samplers,
resumed runs and the results file read its COMPLETE trials), so ``dse search`` keeps beside it,
in the same storage, a second study named ``<study>-dashboard`` with one trial per COMPLETE
trial of the search:

- a feasible design is a COMPLETE trial with the same values and parameters (floats written to
  twelve significant digits: ``clock_ghz 1.6``, not optuna's ``1.5999999999999999``);
- an infeasible design is a FAIL trial (it fails the model's constraints): no values, so the
  dashboard cannot rank it, with its objective values as user attributes (``cost_usd``, ...).

Every view trial carries the design's ``G`` row as the ``constraints`` system attribute (the
dashboard lists it under the trial), ``feasible`` and ``dse_trial`` (its number in the searched
study); an infeasible one also ``infeasible_because`` (the reasons) and the value of each
violated constraint (``g_memory``, ...). The dashboard's best trials of the view are then
exactly the results file's Pareto rows. The view is brought up to date at the end of each
``dse search`` run: trials already mirrored are kept, new COMPLETE trials are evaluated once
more and added.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from dse.model.evaluate import infeasibility_reasons
from dse.search.problem import Problem, finite_constraints

VIEW_SUFFIX = "-dashboard"
VIEW_OF_ATTR = "dse_view_of"
"""View study attribute: ``{"study": name, "problem": fingerprint}`` of the searched study."""
TRIAL_ATTR = "dse_trial"
FEASIBLE_ATTR = "feasible"
REASONS_ATTR = "infeasible_because"
CONSTRAINTS_ATTR = "constraints"
DESIGN_ATTR = "design"
"""The searched trial's design as JSON: the view leaves it out (its parameters say the same)."""


def view_name(study_name: str) -> str:
    """The name of the dashboard view of the study ``study_name``."""
    return f"{study_name}{VIEW_SUFFIX}"


def update_view(kept: Any, problem: Problem, free: list[int]) -> Any:
    """Bring the dashboard view of the stored study ``kept`` up to date; returns the view, or
    None (with a note on stderr) where a study of the view's name exists that is no view.

    ``free``: the indices of the space's dimensions that the trials' parameters hold.
    """
    import optuna
    from optuna.trial import TrialState

    from dse.search.optuna_engine import OptunaEngine, set_metric_names

    storage = kept._storage
    name = view_name(kept.study_name)
    owner = json.dumps({"study": kept.study_name, "problem": problem.fingerprint()})
    view = optuna.create_study(
        storage=storage, study_name=name, directions=kept.directions, load_if_exists=True
    )
    known = view.user_attrs.get(VIEW_OF_ATTR)
    if known is None and (view.trials or view.user_attrs):
        # A study of the user's own that has this name: left alone, and no view.
        print(
            f"dse: note: no dashboard view written: the storage's study {name!r} is not one",
            file=sys.stderr,
        )
        return None
    if known != owner:
        # A view of an earlier study of the same name (deleted and made anew): start again.
        if view.trials:
            optuna.delete_study(study_name=name, storage=storage)
            view = optuna.create_study(storage=storage, study_name=name, directions=kept.directions)
        view.set_user_attr(VIEW_OF_ATTR, owner)
    set_metric_names(view, problem)
    view.set_user_attr(
        "dse_note",
        f"view of study {kept.study_name!r}: infeasible designs are FAIL trials "
        "(objective values in user attributes), so only feasible designs can be best",
    )
    mirrored = {t.user_attrs.get(TRIAL_ATTR) for t in view.get_trials(deepcopy=False)}
    complete = kept.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    new = [t for t in complete if t.number not in mirrored]
    if not new:
        return view
    evaluation = problem.evaluate(OptunaEngine._indices(problem, [t.params for t in new], free))
    metrics = evaluation.metrics
    objectives = [o.name for o in problem.space.objectives]
    G = finite_constraints(evaluation.G)
    view.add_trials(
        [
            _view_trial(
                trial,
                bool(evaluation.feasible[i]),
                {name: float(metrics.columns[name][i]) for name in objectives},
                {name: float(g[i]) for name, g in metrics.constraints.items() if not g[i] <= 0},
                [float(g) for g in G[i]],
                "; ".join(infeasibility_reasons(metrics, i)),
            )
            for i, trial in enumerate(new)
        ]
    )
    return view


def _view_trial(
    trial: Any,
    feasible: bool,
    objectives: dict[str, float],
    violated: dict[str, float],
    G: list[float],
    reasons: str,
) -> Any:
    """The view's copy of ``trial``: COMPLETE with the searched trial's values when the design
    is feasible, else FAIL with its ``objectives`` and ``violated`` constraints (name → value)
    as user attributes."""
    from optuna.trial import FrozenTrial, TrialState

    user_attrs: dict[str, Any] = {
        **{k: v for k, v in trial.user_attrs.items() if k != DESIGN_ATTR},
        TRIAL_ATTR: trial.number,
        FEASIBLE_ATTR: feasible,
    }
    if not feasible:
        user_attrs[REASONS_ATTR] = reasons or "an objective is not finite"
        user_attrs.update(objectives)
        user_attrs.update(violated)
    return FrozenTrial(
        number=-1,
        trial_id=-1,
        state=TrialState.COMPLETE if feasible else TrialState.FAIL,
        value=None,
        values=list(trial.values) if feasible else None,
        datetime_start=trial.datetime_start,
        datetime_complete=trial.datetime_complete,
        params={
            name: _readable(value, trial.distributions[name])
            for name, value in trial.params.items()
        },
        distributions=dict(trial.distributions),
        user_attrs=user_attrs,
        system_attrs={CONSTRAINTS_ATTR: G},
        intermediate_values={},
    )


def _readable(value: Any, distribution: Any) -> Any:
    """A float parameter to twelve significant digits: ``1.6``, where optuna's stepped
    ``1.4 + 0.2`` gives ``1.5999999999999999`` (the same level of the same design)."""
    from optuna.distributions import FloatDistribution

    if not isinstance(distribution, FloatDistribution):
        return value
    rounded = float(f"{value:.12g}")
    return rounded if distribution._contains(rounded) else value
