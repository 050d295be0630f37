"""Fuzzing `seal serve` on loopback: 1,200 malformed requests built from the server's own OpenAPI schema —
each endpoint's fields with values of every JSON type, missing and unknown fields, broken JSON and raw bytes,
odd paths — and not one may get a 5xx; every error is JSON in OpenAI's shape, and the server still answers."""

import json

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.workspace import Workspace
from api import create_app
from tests.test_serve import serving

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
                    max_leaves=12)
SEGMENT = st.sampled_from(["v1", "v0", "seal", "..", "%2e%2e", "-1", "99999999999999999999", "0", "x" * 300]) | \
    st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="/?#"), max_size=12)


@pytest.fixture(scope="module")
def fuzzed(learned_template, tmp_path_factory):
    """One server for every example (a module-scoped copy of the learned home)."""
    import shutil

    home = tmp_path_factory.mktemp("fuzz") / "home"
    shutil.copytree(learned_template, home)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SEAL_HOME", str(home))
        app = create_app(Workspace.open(), max_tokens_limit=8)
        bodies = {path: op["requestBody"]["content"]["application/json"]["schema"]
                  for path, ops in app.openapi()["paths"].items() for op in ops.values() if "requestBody" in op}
        schemas = app.openapi()["components"]["schemas"]
        with serving(app) as url:
            yield url, {path: schemas[body["$ref"].rsplit("/", 1)[1]] for path, body in bodies.items()}


def fields(schema: dict) -> st.SearchStrategy[dict]:
    """Some of the schema's fields (and maybe an unknown one), each with any JSON value."""
    names = list(schema.get("properties", {})) + ["unexpected"]
    return st.dictionaries(st.sampled_from(names), JSON, max_size=len(names))


@st.composite
def requests(draw, endpoints: dict) -> tuple[str, str, bytes | None]:
    kind = draw(st.sampled_from(["fields", "fields", "json", "bytes", "get"]))
    if kind == "get":
        return "GET", draw(st.sampled_from(["/v1/jobs/", "/v1/models/", "/v1/versions/"])) + draw(SEGMENT), None
    path = draw(st.sampled_from(sorted(endpoints) + ["/v1/versions/{v}/activate"]))
    path = path.replace("{v}", draw(SEGMENT))
    if kind == "fields":
        body = json.dumps(draw(fields(endpoints.get(path, {})))).encode()
    elif kind == "json":
        body = json.dumps(draw(JSON)).encode()
    else:
        body = draw(st.binary(max_size=200))
    return "POST", path, body


def test_fuzzed_requests_never_get_a_server_error(fuzzed):
    url, endpoints = fuzzed
    sent = []

    @settings(max_examples=1200, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(requests(endpoints))
    def one(request):
        method, path, body = request
        response = httpx.request(method, url + path, content=body, headers={"content-type": "application/json"},
                                 timeout=60)
        sent.append(response.status_code)
        assert response.status_code < 500, f"{method} {path} {body[:200] if body else ''!r}: {response.text[:300]}"
        if response.status_code >= 400:
            error = response.json()["error"]
            assert set(error) == {"message", "type", "param", "code"} and error["message"], response.text

    one()
    assert len(sent) >= 1000, f"only {len(sent)} requests were sent"
    assert httpx.get(url + "/v1/models").status_code == 200
