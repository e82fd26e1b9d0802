"""environment.yml stays in step with pyproject.toml; the README and CI agree."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from leaklab._compat import tomllib

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _spec(requirement: str) -> str:
    """The requirement without its environment marker and spaces: ``tomli>=2.0``."""
    return requirement.split(";", 1)[0].replace(" ", "").lower().replace("_", "-")


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _conda() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    return {_name(d): d.replace(" ", "").lower() for d in env["dependencies"] if isinstance(d, str)}


def test_environment_yml_lists_every_pyproject_dependency():
    project = _project()
    wanted = {_name(r) for r in project["dependencies"]} | {_name(r) for r in project["optional-dependencies"]["test"]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = {_name(d) for d in env["dependencies"] if isinstance(d, str)}
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    missing = wanted - conda
    assert not missing, f"environment.yml lacks {sorted(missing)}"
    assert "-e ." in pip
    assert {"python", "jupyterlab", "objgraph", "pympler", "pandas", "matplotlib", "graphviz", "pip"} <= conda
    assert env["channels"] == ["conda-forge"]


def test_environment_yml_has_the_same_bounds_as_pyproject():
    project = _project()
    conda = _conda()
    requirements = [*project["dependencies"], *project["optional-dependencies"]["test"]]
    differ = {_spec(r): conda[_name(r)] for r in requirements if conda.get(_name(r)) != _spec(r)}
    assert not differ, f"pyproject -> environment.yml bounds differ: {differ}"
    assert conda["python"] == "python" + project["requires-python"].replace(" ", "")


def test_supported_pythons_agree():
    project = _project()
    low = re.fullmatch(r">=3\.(\d+)", project["requires-python"].replace(" ", ""))
    assert low, project["requires-python"]
    listed = sorted(
        int(c.rsplit(".", 1)[1]) for c in project["classifiers"] if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    )
    assert listed and listed[0] == int(low.group(1)), (listed, project["requires-python"])
    assert listed == list(range(listed[0], listed[-1] + 1)), listed
    # tomllib is 3.11+: leaklab._compat falls back to tomli below that.
    if int(low.group(1)) < 11:
        assert any(_name(r) == "tomli" and "python_version<'3.11'" in r.replace('"', "'").replace(" ", "")
                   for r in project["dependencies"])


def test_ci_runs_exactly_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    command = next(line for line in ci.splitlines() if "pytest" in line).strip()
    assert command in readme


def test_ci_runs_the_lowest_env_selection_and_tests_are_marked():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "'numpy<2' 'pandas<3' 'mcp<2'" in ci
    assert "-m pytest -m lowest_env" in ci
    assert "Python 3.10 not found: " in ci
    pytest_conf = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert any(m.startswith("lowest_env:") for m in pytest_conf["markers"])
    marked = [p for p in (ROOT / "tests").rglob("test_*.py") if "lowest_env" in p.read_text(encoding="utf-8")]
    assert marked, "no test is marked lowest_env: .ci/run would collect nothing"
