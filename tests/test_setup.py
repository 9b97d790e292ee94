"""The README's test command sets everything up itself on a fresh clone: the test extra holds
every package the tests import, and tests that need Chromium (or PostgreSQL) say exactly what
is missing and how to install it, skipping on a developer's machine and failing in CI."""
from __future__ import annotations

import ast
import os
import subprocess
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]


def _top_level_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _imported_by_tests() -> set[str]:
    """Every top-level module the test files import, and those of the benchmark modules they use."""
    files = list((ROOT / "tests").rglob("*.py"))
    modules = set().union(*map(_top_level_imports, files))
    used = {line.split()[1] for f in files for line in f.read_text().splitlines()
            if line.startswith("from benchmarks.")}
    for module in used:
        modules |= _top_level_imports(ROOT / (module.replace(".", "/") + ".py"))
    return modules


def _undeclared(modules: set[str], *groups: str) -> dict[str, list[str]]:
    """The imported modules that no requirement of these groups ("" for the dependencies)
    provides, directly or as one of its own requirements."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = [r for group in groups
                    for r in (project["dependencies"] if not group else project["optional-dependencies"][group])]
    declared = {canonicalize_name(Requirement(r).name) for r in requirements}
    provided = declared | {r for d in declared for r in _requirements_of(d)}
    distributions = packages_distributions()
    missing = {}
    for module in modules - set(sys.stdlib_module_names) - {"service", "tests", "benchmarks"}:
        names = {canonicalize_name(d) for d in distributions.get(module, [module])}
        if not names & provided:
            missing[module] = sorted(names)
    return missing


def test_when_the_tests_import_a_package_then_the_readme_test_command_installs_it():
    # What `pip install -e '.[local,test]'` installs by name.
    missing = _undeclared(_imported_by_tests(), "", "local", "test")
    assert not missing, f"imported by the tests but not in the test extra: {missing}"


def test_when_the_service_imports_a_package_then_it_is_one_of_its_dependencies():
    """Regression: the child-safety screen's word list was installed by hand, and only a fresh
    virtual environment showed that the service could not start without it."""
    modules = set().union(*map(_top_level_imports, (ROOT / "service").rglob("*.py")))
    # The embedded model's packages are imported only when it is used (the `local` extra).
    missing = _undeclared(modules, "", "local")
    assert not missing, f"imported by the service but not among its dependencies: {missing}"


def _requirements_of(distribution: str) -> set[str]:
    from importlib.metadata import PackageNotFoundError, requires

    try:
        return {canonicalize_name(Requirement(r).name) for r in requires(distribution) or [] if "extra ==" not in r}
    except PackageNotFoundError:
        return set()


def _run_browser_test(**env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k != "REQUIRE_BROWSER"} | env
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
                           "tests/browser/test_keyboard.py"], cwd=ROOT, env=environment, capture_output=True,
                          text=True, timeout=300)


def test_when_chromium_is_missing_on_a_developers_machine_then_browser_tests_skip_saying_how_to_install_it():
    run = _run_browser_test(CHROMIUM_PATH="/nonexistent/chromium")

    assert run.returncode == 0, run.stdout[-2000:]
    assert "1 skipped" in run.stdout and "apt-get install -y chromium" in run.stdout, run.stdout[-2000:]


def test_when_chromium_is_missing_where_it_is_required_then_browser_tests_fail():
    run = _run_browser_test(CHROMIUM_PATH="/nonexistent/chromium", REQUIRE_BROWSER="1")

    assert run.returncode != 0 and "REQUIRE_BROWSER=1, but Chromium is not installed" in run.stdout, run.stdout[-2000:]


def test_when_no_postgresql_server_is_named_then_its_tests_skip_saying_how_to_provide_one():
    environment = {k: v for k, v in os.environ.items() if k not in ("TEST_POSTGRES_URL", "REQUIRE_POSTGRES")}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
                          "tests/test_postgres.py"], cwd=ROOT, env=environment, capture_output=True, text=True,
                         timeout=300)

    assert run.returncode == 0 and "skipped" in run.stdout, run.stdout[-2000:]
    assert "TEST_POSTGRES_URL" in run.stdout and "apt-get install -y postgresql" in run.stdout


def test_when_the_repository_is_cloned_then_the_outside_contract_is_in_it_and_the_readme_points_there():
    contract = (ROOT / "docs" / "contract.md").read_text()
    readme = (ROOT / "README.md").read_text()

    assert "docs/contract.md" in readme and "../shared" not in readme
    for promise in ("The summary page answers at once", "A chapter number that can never exist",
                    "Content-Security-Policy", "answers `429` with a `Retry-After` header"):
        assert promise in contract, f"the contract does not say: {promise}"


def test_when_a_virtual_environment_is_made_in_the_clone_then_git_ignores_it():
    paths = [".venv/bin/python", "venv/bin/python", ".ci/venv/bin/python", "node_modules/axe-core/axe.js"]
    run = subprocess.run(["git", "check-ignore", *paths], cwd=ROOT, capture_output=True, text=True)
    assert run.stdout.split() == paths


def test_when_no_redis_server_is_named_then_the_tests_of_several_processes_skip_saying_how_to_provide_one():
    environment = {k: v for k, v in os.environ.items() if k not in ("TEST_REDIS_URL", "REQUIRE_REDIS")}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
                          "tests/test_several_processes.py", "-k", "land_on"], cwd=ROOT, env=environment,
                         capture_output=True, text=True, timeout=300)

    assert run.returncode == 0 and "skipped" in run.stdout, run.stdout[-2000:]
    assert "TEST_REDIS_URL" in run.stdout and "apt-get install -y redis-server" in run.stdout


def test_when_redis_is_required_but_not_named_then_the_tests_of_several_processes_fail():
    environment = {k: v for k, v in os.environ.items() if k != "TEST_REDIS_URL"} | {"REQUIRE_REDIS": "1"}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "tests/test_several_processes.py", "-k", "land_on"], cwd=ROOT, env=environment,
                         capture_output=True, text=True, timeout=300)

    assert run.returncode != 0 and "REQUIRE_REDIS=1 but TEST_REDIS_URL is not set" in run.stdout, run.stdout[-2000:]


def test_when_a_setting_exists_then_the_readme_settings_table_names_it():
    from service.config import Settings

    table = "\n".join(line for line in (ROOT / "README.md").read_text().splitlines() if line.startswith("| `"))
    named = {name for cell in table.split("|") for name in cell.replace("`", " ").replace(",", " ").split()}
    missing = [name.upper() for name in Settings.model_fields if name.upper() not in named]
    assert not missing, f"settings the README's table does not name: {missing}"


def test_when_any_module_that_uses_litellm_is_imported_first_then_litellm_is_already_offline():
    """The switches live in one place, the `service` package, which Python runs before any of
    its modules: importing the embedded provider or the model client alone finds them set."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("LITELLM_")}
    probe = ("import sys, os; import {module}; import litellm; "
             "print(os.environ['LITELLM_LOCAL_MODEL_COST_MAP'], os.environ['LITELLM_OFFLINE_MODE'], "
             "bool(litellm.model_cost))")
    for module in ("service.llm.local_provider", "service.llm.client"):
        run = subprocess.run([sys.executable, "-c", probe.format(module=module)], cwd=ROOT, env=environment,
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr[-2000:]
        assert run.stdout.split() == ["True", "true", "True"], f"{module}: {run.stdout!r}"
