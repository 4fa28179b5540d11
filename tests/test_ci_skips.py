"""Under CI a skip is a failure (a missing component must not pass as "skipped"), except the
allow-listed reasons; outside CI skips stay skips. Checked on small generated test files."""

import pytest

pytest_plugins = ["pytester"]

SKIPS = """
import pytest

@pytest.fixture
def service():
    pytest.skip("mosquitto is not installed")

def test_skip_in_the_test():
    pytest.skip("llama_cpp is not installed")

def test_skip_in_a_fixture(service):
    pass

@pytest.mark.skipif(True, reason="no GPU")
def test_skip_mark():
    pass

def test_allowed_skip():
    pytest.skip("Model is not serializable.")

@pytest.mark.xfail(reason="known bug")
def test_xfail():
    assert False

def test_passes():
    pass
"""


def _with_our_hooks(pytester):
    pytester.makeconftest("from tests.conftest import pytest_make_collect_report, pytest_runtest_makereport\n")
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    return pytester


@pytest.fixture
def suite(pytester):
    _with_our_hooks(pytester).makepyfile(test_skips=SKIPS)
    return pytester


@pytest.mark.parametrize("ci", [None, ""])
def test_outside_ci_skips_stay_skips(suite, monkeypatch, ci):
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    suite.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1, skipped=4, xfailed=1)


def test_under_ci_a_skip_fails_unless_allowed(suite, monkeypatch):
    monkeypatch.setenv("CI", "true")
    result = suite.runpytest("-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(passed=1, failed=1, errors=2, skipped=1, xfailed=1)  # a setup skip is an error
    for line in (
        "*skipped under CI: mosquitto is not installed (a skip fails in CI unless CI_ALLOWED_SKIPS*",
        "*skipped under CI: no GPU*",
        "*skipped under CI: llama_cpp is not installed*",
        "SKIPPED*Model is not serializable.",
    ):
        result.stdout.fnmatch_lines([line])
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_under_ci_a_module_level_importorskip_is_a_collection_error(pytester, monkeypatch):
    _with_our_hooks(pytester).makepyfile(
        test_missing='import pytest\npytest.importorskip("no_such_module_xyz")\n\ndef test_x(): pass\n'
    )
    monkeypatch.delenv("CI", raising=False)
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(skipped=1)
    monkeypatch.setenv("CI", "true")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*skipped under CI: could not import 'no_such_module_xyz'*"])
