"""millipost.conform.run_models: the RapidCheck IMAP models (millipost-check) against a server
given by URL, and what comes back. Skipped when the package was built without RapidCheck."""
from __future__ import annotations

import pytest

from millipost.conform import ConformError, run_models


def _binary_or_skip():
    from millipost.conform import _check_binary

    try:
        _check_binary()
    except ConformError as e:
        pytest.skip(str(e))


def test_models_pass_against_the_reference_server(server):
    _binary_or_skip()
    url = f"imap://alice:secret@127.0.0.1:{server.imap_port}"
    res = run_models(url, users=["bob:hunter2"], models=["imap", "imap-multi"], runs=5, seed=42)
    assert res["passed"], res["output"]
    assert [r["model"] for r in res["results"]] == ["imap", "imap-multi"]
    for r in res["results"]:
        assert r["passed"] and r["failure"] is None
        assert r["runs"] == 5 and r["seed"] == 42
    assert "seed 42" in res["output"]


def test_unusable_target_is_an_error_not_a_result(server):
    _binary_or_skip()
    with pytest.raises(ConformError, match="LOGIN refused"):
        run_models(f"imap://alice:wrong@127.0.0.1:{server.imap_port}", runs=1)
    with pytest.raises(ConformError, match="unknown model"):
        run_models(None, models=["pop9"])
    with pytest.raises(ConformError, match="imap://"):
        run_models("pop3://a:b@127.0.0.1:110", runs=1)
