"""Shared fixtures: compiled modules are built once per session (Numba compile time dominates
the suite), in a session temporary directory, through the public `graphgen.load`."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

import graphgen

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

# Whole modules in the slow selection: each still runs in the full suite. The quick selection
# (`pytest -m "not slow"`, under a minute on two workers) keeps tests of every stage that
# compile few modules: parsing and checking (test_errors, test_printer, test_ops,
# test_injection, test_language_v2's errors), autodiff (test_gradients, test_seed_network,
# test_entry_points, test_sgd_step), schedule and BLAS (test_loops, test_blas, test_plan,
# test_zoo_specs), render and build (test_generated, test_build, test_show, test_threads), the
# CLI and training (test_cli, test_train_cli's refusals, test_train_api).
SLOW_MODULES = {
    "test_benchmarks_smoke.py",  # imports PyTorch/JAX and runs every implementation
    "test_builds.py",  # concurrent builders in subprocesses
    "test_examples.py",  # every example through finite differences and PyTorch
    "test_extremes.py",
    "test_fuzz.py",  # hypothesis: hundreds of random specs
    "test_install.py",  # pip installs
    "test_jvp.py",  # forward mode on every example and random graphs, through Numba
    "test_limits.py",  # a thousand-statement spec
    "test_train.py",  # digits to 93%
    "test_vecmath.py",  # ulp sweeps
    # many small JIT compiles each (their stages are covered by the quick files below)
    "test_arrays.py",
    "test_hardening.py",
    "test_hardening_files.py",
    "test_zoo_peers.py",
    "test_contract.py",
    "test_fusion.py",
}


# Single tests over ~2 s on two workers (`--durations`), each JIT-compiling specs another
# quick test already covers the stage of: the full suite runs them.
SLOW_TESTS = (
    "test_gradients.py::test_every_elementwise_builtin",
    "test_gradients.py::test_logsumexp_softmax_cross_entropy",
    "test_gradients.py::test_user_defined_fn_gets_its_derivative_from_sympy",
    "test_gradients.py::test_sum_and_mean_with_axis_and_keepdims",
    "test_gradients.py::test_einsum",
    "test_blas.py::test_sgd_step_is_p_minus_lr_grad",
    "test_arrays.py::test_views_are_copied_for_reading_and_give_the_same_result",
    "test_arrays.py::test_float32_and_python_scalar_hypers",
    "test_cli.py::test_check_passes_and_reports_each_param",
    "test_cli.py::test_show_stages",
    "test_generated.py::test_generated_module_runs_without_graphgen",
    "test_generated.py::test_emission_is_deterministic_across_processes",
    "test_seed_network.py::test_float32_works",
    "test_seed_network.py::test_sgd_step_updates_in_place",
    "test_arrays.py::test_nan_and_inf_propagate_by_ieee_rules",
    "test_gradients.py::test_arithmetic_operators_with_broadcasting",
    "test_errors.py::test_cli_missing_file_and_invalid_utf8",
    "test_train_api.py::test_inputs_bind",
    "test_train_api.py::test_regression_target_named_y_with_mae",
    "test_train_api.py::test_label_mismatch",
    "test_train_api.py::test_save_and_predict_from_python",
    "test_train_api.py::test_progress_bar",
    "test_train_api.py::test_divergence_raises",
    "test_language_v2.py::test_reductions_max_min_prod_var_std_axis_tuples",
    "test_language_v2.py::test_basic_slicing_and_indexing",
    "test_language_v2.py::test_new_elementwise_functions",
    "test_language_v2.py::test_comparisons_make_masks_and_where_broadcasts",
    "test_language_v2.py::test_max_min_prod_by_hand",
    "test_language_v2.py::test_zeros_in_prod_and_ties_in_max_split_as_torch",
    "test_language_v2.py::test_a_named_dim_too_small_for_a_slice_is_refused_at_call_time",
    "test_language_v2.py::test_clip_passes_the_gradient_at_the_bounds",
    "test_train_cli.py::test_regression_on_a_csv_with_header_columns",
    "test_train_cli.py::test_save_resume_predict_round_trip",
    "test_train_cli.py::test_early_stopping_keeps_the_best_weights",
    "test_loops.py::test_flat_pass_values_and_gradients",
    "test_hardening_specs.py::test_legitimate_nesting_compiles",
    "test_hardening_specs.py::test_literal_fuzz_is_a_value_or_a_spec_error",
    "test_hardening_specs.py::test_file_names_with_terminal_escapes_are_escaped",
    "test_hardening_specs.py::test_nested_fns_are_refused_quickly",
    "test_train_cli.py::test_spec_and_data_names_with_terminal_escapes",
    "test_train_cli.py::test_predict_refuses_bad_out_and_inputs",
    "test_train_cli.py::test_divergence_stops_with_the_learning_rate_named",
    "test_train_cli.py::test_bad_options_are_refused_with_a_message",
    "test_zoo_specs.py::test_zoo_spec_gradient_matches_finite_differences",
    "test_gradients.py::test_matmul_variants_and_transposes",
)


# The files with the most JIT compiling, longest first: under `-n 2 --dist loadfile` each file
# runs on one worker, and starting the long ones first lets the two workers finish together
# (collection order left the longest file for the end, one worker idle).
RUN_FIRST = ["test_jvp.py", "test_language_v2.py", "test_gradients.py", "test_arrays.py",
             "test_hardening.py", "test_fuzz.py", "test_blas.py", "test_sgd_step.py",
             "test_examples.py", "test_benchmarks_smoke.py", "test_install.py",
             "test_readme.py", "test_limits.py"]


def pytest_collection_modifyitems(config, items):
    rank = {name: k for k, name in enumerate(RUN_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(RUN_FIRST)))  # stable
    for item in items:
        where = f"{item.path.name}::{item.name}"
        if item.path.name in SLOW_MODULES or where.startswith(SLOW_TESTS):
            item.add_marker(pytest.mark.slow)


def _shared_dir(tmp_path_factory, name: str) -> Path:
    """A session directory; under pytest-xdist one shared by the workers of the run, so that
    a module one worker built (and Numba compiled and cached on disk) is loaded, not
    compiled again, by the other: JIT compiling is most of the suite's time."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        path = tmp_path_factory.getbasetemp().parent / name
        path.mkdir(exist_ok=True)
        return path
    return tmp_path_factory.mktemp(name)


@pytest.fixture(scope="session")
def gen_dir(tmp_path_factory) -> Path:
    return _shared_dir(tmp_path_factory, "generated")


@pytest.fixture(scope="session")
def spec_dir(tmp_path_factory) -> Path:
    return _shared_dir(tmp_path_factory, "specs")


@pytest.fixture(scope="session")
def build(gen_dir, spec_dir):
    """build(text, name=None) -> imported module, one per distinct spec text per session."""
    cache: dict[str, object] = {}

    def _build(text: str, name: str | None = None):
        key = hashlib.sha256(text.encode()).hexdigest()[:12]
        if key not in cache:
            path = spec_dir / f"{name or 'spec'}_{key}.gg"
            if not path.exists():  # atomically: another worker may be reading it
                part = path.with_name(f"{path.name}.{os.getpid()}.part")
                part.write_text(text)
                os.replace(part, path)
            cache[key] = graphgen.load(path, out_dir=gen_dir)
        return cache[key]

    return _build


@pytest.fixture(scope="session")
def mlp(gen_dir):
    return graphgen.load(EXAMPLES / "mlp.gg", out_dir=gen_dir)
