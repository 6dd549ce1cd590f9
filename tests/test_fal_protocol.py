"""fal's own clients against the local service (`ltx-retake serve`): fal-client in Python, @fal-ai/client in node.

Both are pointed at loopback only (fal-client by its module's URL constants, set after import as the reference
notes say; the JS client by a request middleware that rewrites fal's hosts), so no test leaves this machine.
The JS test skips cleanly unless `node` and the npm package are there (NODE_PATH, or LTX_RETAKE_FAL_JS naming
a node_modules folder that holds @fal-ai/client).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import httpx
import pytest

from service_fixtures import LocalServiceConfig, running_service, tiny_clip  # noqa: F401 - fixtures

fal_client = pytest.importorskip("fal_client")
import fal_client.client as fc  # noqa: E402

KEY = "ltxfalproto-key-P3q8Zr6Wn1"
MODEL = "fal-ai/ltx-2/retake-video"
ARGS = {"prompt": "a red kite", "start_time": 0.5, "duration": 2.0, "retake_mode": "replace_video"}


@pytest.fixture
def served(monkeypatch):
    """A keyed local service, and fal-client's hosts pointed at it (queue, run, REST and CDN)."""
    with running_service(require_key=KEY) as service:
        base = service.base_url
        monkeypatch.setattr(fc, "QUEUE_URL_FORMAT", base + "/")
        monkeypatch.setattr(fc, "RUN_URL_FORMAT", base + "/run/")
        monkeypatch.setattr(fc, "REST_URL", base)
        monkeypatch.setattr(fc, "CDN_URL", base)                 # uploads go to <CDN_URL>/files/upload
        yield service


def test_fal_client_uploads_submits_follows_runs_and_fetches(served, tiny_clip, tmp_path):
    client = fal_client.SyncClient(key=KEY)
    url = client.upload_file(tiny_clip)                         # the CDN path: POST <CDN_URL>/files/upload
    assert [r["path"] for r in served.requests_to("upload")] == ["/files/upload"]
    fallback = client.upload_file(tiny_clip, repository="fal")  # storage/upload/initiate (gcs) and its PUT
    assert any(r["path"] == "/storage/upload/initiate" for r in served.requests)
    with httpx.Client() as http:
        assert http.get(url).content == http.get(fallback).content == tiny_clip.read_bytes()

    updates, ids = [], []
    result = client.subscribe(MODEL, {**ARGS, "video_url": url}, with_logs=True, on_enqueue=ids.append,
                              on_queue_update=updates.append)
    assert result["video"]["url"] and result["video"]["num_frames"] == 25
    assert any(isinstance(u, fal_client.Completed) for u in updates)
    ran = client.run(MODEL, {**ARGS, "video_url": fallback})     # fal.run style: the answer is the result
    assert ran["video"]["url"] and ran["video"]["num_frames"] == 25
    with httpx.Client() as http:
        assert http.get(ran["video"]["url"]).content[4:8] == b"ftyp"
        status = http.get(f"{served.base_url}/fal-ai/ltx-2/requests/{ids[0]}/status",
                          headers={"Authorization": f"Key {KEY}"})
        assert status.headers["x-fal-request-id"] == ids[0]
        assert http.get(f"{served.base_url}/no/such/route").status_code == 404

    jobs = len(served.jobs)
    with pytest.raises(fal_client.client.FalClientHTTPError) as unknown:
        client.submit("fal-ai/not-a-retake/model", {**ARGS, "video_url": url})
    assert unknown.value.status_code == 404 and len(served.jobs) == jobs, "an unknown model creates no job"
    wrong = "ltxfalproto-wrong-K8d2Vm4Xs9"
    with pytest.raises(fal_client.client.FalClientHTTPError) as refused:
        fal_client.SyncClient(key=wrong).submit(MODEL, {**ARGS, "video_url": url})
    assert refused.value.status_code == 401 and wrong not in str(refused.value)
    assert wrong not in json.dumps(refused.value.response_headers)


def _node_with_fal_js() -> tuple[str, dict[str, str]] | None:
    """`node` and an environment in which `require("@fal-ai/client")` works, or None."""
    node = shutil.which("node")
    if not node:
        return None
    env = dict(os.environ)
    extra = os.environ.get("LTX_RETAKE_FAL_JS")
    if extra:
        env["NODE_PATH"] = os.pathsep.join(p for p in (extra, env.get("NODE_PATH")) if p)
    probe = subprocess.run([node, "-e", "require.resolve('@fal-ai/client')"], env=env, capture_output=True,
                           timeout=60)
    return (node, env) if probe.returncode == 0 else None


_JS = r"""
const { createFalClient } = require("@fal-ai/client");
const base = process.env.BASE;
const rewrite = (url) => url.replace("https://queue.fal.run/", base + "/").replace("https://fal.run/", base + "/run/")
                            .replace("https://rest.fal.ai/", base + "/").replace("https://rest.alpha.fal.ai/", base + "/");
const fal = createFalClient({ credentials: process.env.KEY,
                              requestMiddleware: async (req) => ({ ...req, url: rewrite(req.url) }) });
(async () => {
  const fs = require("fs");
  const blob = new Blob([fs.readFileSync(process.env.CLIP)], { type: "video/mp4" });
  const url = await fal.storage.upload(blob);
  const input = { video_url: url, prompt: "a red kite", start_time: 0.5, duration: 2.0, retake_mode: "replace_video" };
  const streamed = await fal.subscribe(process.env.MODEL, { input, logs: true, mode: "streaming" });
  const polled = await fal.subscribe(process.env.MODEL, { input, logs: true, mode: "polling", pollInterval: 100 });
  const ran = await fal.run(process.env.MODEL, { input });
  console.log(JSON.stringify({ url, requestId: streamed.requestId, queued: streamed.data, polled: polled.data,
                               ran: ran.data }));
})().catch((e) => { console.error(String(e && e.stack || e)); process.exit(1); });
"""


def test_fal_js_client_uploads_submits_follows_and_runs(tiny_clip, tmp_path):
    found = _node_with_fal_js()
    if found is None:
        pytest.skip("node or the @fal-ai/client npm package is not here (set LTX_RETAKE_FAL_JS to its node_modules)")
    node, env = found
    script = tmp_path / "fal_js.js"
    script.write_text(_JS)
    with running_service(require_key=KEY) as service:
        proc = subprocess.run([node, str(script)], capture_output=True, text=True, timeout=120,
                              env={**env, "BASE": service.base_url, "KEY": KEY, "CLIP": str(tiny_clip), "MODEL": MODEL})
        assert proc.returncode == 0, proc.stderr[-3000:]
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        assert any(r["path"] == "/storage/upload/initiate" for r in service.requests)
        with httpx.Client() as http:
            assert http.get(out["url"]).content == tiny_clip.read_bytes()
    assert out["requestId"] and out["queued"]["video"]["num_frames"] == 25
    assert out["polled"]["video"]["num_frames"] == out["ran"]["video"]["num_frames"] == 25
    assert KEY not in proc.stdout + proc.stderr
