"""`vigil fleet`: status, push and pull against a site of real Vigils (`vigil run` on the sample clip, each
with its API and token, one real mosquitto), a slow camera behind a delaying proxy, cameras killed during
a push, a wrong token; the fleet file's rules without a network."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from app.errors import ConfigError
from app.fleet.fleetfile import FleetFile, admin_base, credentials, merged, site_tree
from tests.conftest import ROOT
from tests.fleet_rig import ZONE, HoldingProxy, Instance, fleet, fleet_doc, fleet_env, tokens, wait_all, write
from tests.mqtt_util import Subscriber, wait_until

N = 6


# ---- the fleet file ---------------------------------------------------------------------------------

def test_a_cameras_site_is_common_with_its_own_over_it_and_its_zones_replace_the_common_ones():
    f = FleetFile.model_validate({
        "common": {"mqtt": {"host": "broker", "port": 1883}, "zones": {"all": ZONE}},
        "cameras": {"a": {"url": "http://h:1/", "site": {"mqtt": {"port": 8883}, "zones": {"door": ZONE}}},
                    "b": {"url": "http://h:2"}}})
    assert site_tree(f, "a") == {"mqtt": {"host": "broker", "port": 8883}, "zones": {"door": ZONE}}
    assert site_tree(f, "b") == {"mqtt": {"host": "broker", "port": 1883}, "zones": {"all": ZONE}}
    assert merged({"a": {"b": 1}}, {"a": {"c": 2}}) == {"a": {"b": 1, "c": 2}}
    assert f.cameras["b"].url == "http://h:2/"
    cam = FleetFile.model_validate({"cameras": {"c": {"url": "https://10.0.0.9/local/vigil"}}}).cameras["c"]
    assert admin_base(cam) == "https://10.0.0.9/local/vigil/admin/"  # the camera's admin reverse-proxy path
    assert admin_base(f.cameras["a"]) == "http://h:1/"  # a laptop: the token decides


def test_credentials_come_from_the_environment_or_netrc_and_a_missing_one_is_named(tmp_path):
    doc = {"defaults": {"user": "root", "password_env": "CAM_PW"},
           "cameras": {"a": {"url": "https://cam-a/local/vigil/"},
                       "b": {"url": "https://cam-b/local/vigil/", "password_env": None, "auth": "basic"},
                       "l": {"url": "http://laptop:8080/", "token_env": "LAPTOP_TOKEN"}}}
    f = FleetFile.model_validate(doc)
    c = credentials(f, "a", env={"CAM_PW": "pw"})
    assert (c.auth, c.user, c.password) == ("digest", "root", "pw")
    assert "pw" not in repr(c)
    with pytest.raises(ConfigError, match="camera a: password_env: environment variable CAM_PW is not set"):
        credentials(f, "a", env={})
    rc = tmp_path / "netrc"
    rc.write_text("machine cam-b login op password from-netrc\n")
    rc.chmod(0o600)
    f.cameras["b"].password_env = None
    f.defaults.password_env = None
    c = credentials(f, "b", env={}, netrc_file=str(rc))
    assert (c.auth, c.user, c.password) == ("basic", "root", "from-netrc")  # the file's user wins over netrc's
    assert credentials(f, "l", env={"LAPTOP_TOKEN": "t"}).auth == "token"


def test_the_documented_fleet_file_is_valid_and_each_cameras_site_validates():
    import re

    from app.config import load_config

    text = (ROOT / "docs" / "fleet.md").read_text()
    f = FleetFile.model_validate(yaml.safe_load(re.search(r"```yaml\n(.*?)```", text, re.S).group(1)))
    assert set(f.cameras) == {"door", "yard", "laptop"}
    for name in f.cameras:
        load_config(None, env={}, site=site_tree(f, name))
    assert admin_base(f.cameras["door"]) == "https://10.0.0.11/local/vigil/admin/"


def test_a_bad_fleet_file_is_one_line_and_exit_2(tmp_path):
    bad = write(tmp_path / "f.yaml", {"cameras": {"a": {"url": "ftp://x/"}}})
    r = fleet("status", bad)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("vigil: config error: fleet file") and "cameras.a.url" in r.stderr
    r = fleet("status", str(tmp_path / "missing.yaml"))
    assert r.returncode == 2 and "No such file" in r.stderr
    need = write(tmp_path / "g.yaml", {"cameras": {"a": {"url": "http://127.0.0.1:9/", "token_env": "NOPE"}}})
    r = fleet("config", "push", need)
    assert r.returncode == 2 and "environment variable NOPE is not set" in r.stderr


# ---- a site of real Vigils --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def site(tmp_path_factory, mosquitto):
    root = tmp_path_factory.mktemp("fleet")
    cams = [Instance(root, i, mosquitto.port).start() for i in range(N)]
    try:
        wait_all(cams, 240)
        yield cams
    finally:
        for c in cams:
            c.stop()


def test_status_shows_every_camera_and_exits_0_when_all_are_well(site, tmp_path):
    path = write(tmp_path / "fleet.yaml", fleet_doc(site))
    r = fleet("status", path, "--json", env=tokens(site))
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    rows = {c["name"]: c for c in doc["cameras"]}
    assert set(rows) == {c.name for c in site} and doc["summary"] == {**doc["summary"], "cameras": N, "ok": N}
    for c in site:
        row = rows[c.name]
        assert row["reachable"] and row["health"] == "ok" and row["device_id"] == c.name
        assert row["mqtt"] == "connected" and row["version"] and row["uptime"] > 0
        assert row["process_fps"] > 0 and row["model_runs_per_frame"] >= 1
    r = fleet("status", path, env=tokens(site))
    lines = r.stdout.splitlines()
    assert lines[0].split()[:2] == ["CAMERA", "HEALTH"] and len(lines) == N + 2
    assert lines[-1] == f"{N} cameras: {N} ok"


def test_a_wrong_token_and_a_dead_address_make_their_rows_and_exit_1(site, tmp_path):
    doc = fleet_doc(site[:3])
    doc["cameras"]["gone"] = {"url": "http://127.0.0.1:9/", "token_env": "FLEET_TOKEN_0"}
    path = write(tmp_path / "fleet.yaml", doc)
    env = {**tokens(site[:3]), "FLEET_TOKEN_1": "not-the-token"}
    r = fleet("status", path, "--json", env=env)
    assert r.returncode == 1
    rows = {c["name"]: c for c in json.loads(r.stdout)["cameras"]}
    assert rows["cam1"]["health"] == "unauthorised" and "401" in rows["cam1"]["problem"]
    assert rows["gone"]["reachable"] is False and rows["gone"]["problem"].startswith("cannot connect")
    assert rows["cam0"]["health"] == rows["cam2"]["health"] == "ok"
    before = site[1].site_file()
    r = fleet("config", "push", path, "--camera", "cam1", env=env)
    assert r.returncode == 1 and r.stdout.startswith("cam1: unauthorised") and site[1].site_file() == before


def test_a_slow_camera_is_waited_for_up_to_the_timeout_and_no_longer(site, tmp_path):
    slow = HoldingProxy(site[0].port, delay=3.0)
    try:
        doc = fleet_doc(site[:2], urls={"cam0": f"http://127.0.0.1:{slow.port}/"})
        del doc["defaults"]["timeout"]
        path = write(tmp_path / "fleet.yaml", doc)
        r = fleet("status", path, "--json", "--timeout", "1", env=tokens(site))
        rows = {c["name"]: c for c in json.loads(r.stdout)["cameras"]}
        assert r.returncode == 1 and rows["cam0"]["health"] == "unreachable" and "1 s" in rows["cam0"]["problem"]
        assert rows["cam1"]["health"] == "ok"  # the others are not held up by it
        r = fleet("status", path, "--json", "--timeout", "20", env=tokens(site))
        assert r.returncode == 0, r.stdout
    finally:
        slow.close()


def test_https_checked_against_the_sites_ca_and_insecure_said_loudly(site, tmp_path):
    import ssl

    from tests.test_mqtt_faults import make_certs

    certs = make_certs(tmp_path)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(certs / "server.pem", certs / "server.key")
    front = HoldingProxy(site[0].port, tls=ctx)
    try:
        doc = fleet_doc(site[:1], urls={"cam0": f"https://127.0.0.1:{front.port}/"})
        doc["defaults"]["ca"] = str(certs / "ca.pem")
        r = fleet("status", write(tmp_path / "ca.yaml", doc), "--json", env=tokens(site))
        assert r.returncode == 0 and "WARNING" not in r.stderr, r.stdout + r.stderr
        doc["defaults"]["ca"] = str(certs / "other.pem")  # a CA that did not sign the camera's certificate
        path = write(tmp_path / "other.yaml", doc)
        r = fleet("status", path, "--json", env=tokens(site))
        row = json.loads(r.stdout)["cameras"][0]
        assert r.returncode == 1 and not row["reachable"] and "CERTIFICATE_VERIFY_FAILED" in row["problem"]
        r = fleet("status", path, "--json", "--insecure", env=tokens(site))
        assert r.returncode == 0 and "WARNING: --insecure: TLS certificates are NOT checked" in r.stderr
    finally:
        front.close()


def test_push_gives_each_camera_its_zone_seen_on_its_api_and_on_the_feed(site, tmp_path, mosquitto):
    sites = {c.name: {"zones": {f"area{c.i}": ZONE}} for c in site}
    common = {"filters": {"min_score": 0.3}}  # a threshold the whole site shares
    path = write(tmp_path / "fleet.yaml", fleet_doc(site, common=common, sites=sites))
    before = {c.name: c.site_file() for c in site}
    r = fleet("config", "push", path, "--dry-run", env=tokens(site))
    assert r.returncode == 0, r.stdout + r.stderr
    for c in site:
        assert f"{c.name}: would change" in r.stdout and f"    zones.area{c.i}: - -> " in r.stdout
        assert c.site_file() == before[c.name]  # a dry run changes nothing
    feed = Subscriber(mosquitto.port, "vigil/+/zones/#")
    try:
        r = fleet("config", "push", path, "--json", env=tokens(site))
        assert r.returncode == 0, r.stdout + r.stderr
        results = {x["name"]: x for x in json.loads(r.stdout)}
        for c in site:
            assert results[c.name]["outcome"] == "applied" and results[c.name]["apply"]["live"] == ["zones", "filters"]
            running = c.get("/api/config")
            assert list(running["zones"]) == [f"area{c.i}"]  # each its own, none of the others'
            assert running["filters"]["min_score"] == 0.3
            feed.wait_for(lambda m, c=c: m.topic.startswith(f"vigil/{c.name}/zones/area{c.i}/"), 30,
                          f"{c.name}'s zone on the feed")
    finally:
        feed.close()
    r = fleet("config", "push", path, "--dry-run", env=tokens(site))
    assert r.returncode == 0 and r.stdout.count(": unchanged") == N


def test_an_invalid_camera_configuration_stops_the_push_before_anything_is_sent(site, tmp_path):
    sites = {"cam0": {"zones": {"new": ZONE}}, "cam1": {"zones": {"flat": {"polygon": [[0, 0], [1, 1]]}}}}
    path = write(tmp_path / "fleet.yaml", fleet_doc(site[:2], sites=sites))
    before = [c.site_file() for c in site[:2]]
    r = fleet("config", "push", path, env=tokens(site))
    assert r.returncode == 2 and "cam1: zones.flat.polygon" in r.stderr and "nothing was sent" in r.stderr
    assert [c.site_file() for c in site[:2]] == before


def test_pull_saves_each_camera_and_a_fleet_file_that_pushes_back_unchanged(site, tmp_path):
    path = write(tmp_path / "fleet.yaml", fleet_doc(site))
    out = tmp_path / "backup"
    r = fleet("config", "pull", path, "--out", str(out), env=tokens(site))
    assert r.returncode == 0, r.stdout + r.stderr
    for c in site:
        assert yaml.safe_load((out / f"{c.name}.yaml").read_text()) == (c.site_file() or {})
        assert "token" not in (out / f"{c.name}.yaml").read_text()
    pulled = yaml.safe_load((out / "fleet.yaml").read_text())
    assert set(pulled["cameras"]) == {c.name for c in site}
    r = fleet("config", "push", str(out / "fleet.yaml"), "--dry-run", env=tokens(site))
    assert r.returncode == 0 and r.stdout.count(": unchanged") == N, r.stdout


@pytest.fixture
def behind_apache(tmp_path, mosquitto):
    """A Vigil as on a camera: a read port and an admin port behind Debian's apache2 with digest
    authentication (tests/apache_proxy.py: viewer and admin on /local/vigil/api/, admin only on
    /local/vigil/admin/); changes are taken on the admin port only."""
    from tests.apache_proxy import USERS, Proxy, available

    why = available()
    if why:
        pytest.fail(why, pytrace=False)
    cam = Instance(tmp_path, 9, mosquitto.port, camera=True).start()
    proxy = None
    try:
        wait_all([cam], 240)
        proxy = Proxy().start(cam.port, cam.admin_port)
        yield cam, proxy, USERS
    finally:
        if proxy is not None:
            proxy.stop()
        cam.stop()


def test_digest_authentication_through_the_cameras_reverse_proxy_and_its_admin_path(behind_apache, tmp_path):
    cam, proxy, users = behind_apache
    doc = {"defaults": {"auth": "digest", "user": "admin", "password_env": "CAM_PW"},
           "cameras": {"cam9": {"url": f"{proxy.url}/local/vigil/", "site": {"zones": {"gate": ZONE}}}}}
    path = write(tmp_path / "fleet.yaml", doc)
    r = fleet("status", path, "--json", env={"CAM_PW": users["admin"]})
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["cameras"][0]["device_id"] == "cam9"
    # changes go to /local/vigil/admin/ (the default for a camera's URL), which needs a camera administrator
    r = fleet("config", "push", path, env={"CAM_PW": users["admin"]})
    assert r.returncode == 0 and r.stdout.startswith("cam9: applied"), r.stdout + r.stderr
    assert list(cam.get("/api/config")["zones"]) == ["gate"]
    r = fleet("status", path, "--json", env={"CAM_PW": "wrong"})
    row = json.loads(r.stdout)["cameras"][0]
    assert r.returncode == 1 and row["health"] == "unauthorised" and row["reachable"]
    netrc = tmp_path / "netrc"  # a viewer's password from ~/.netrc: it reads, but may not change anything
    netrc.write_text(f"machine 127.0.0.1 login viewer password {users['viewer']}\n")
    netrc.chmod(0o600)
    doc["defaults"] = {}
    doc["cameras"]["cam9"]["site"] = {}
    path = write(tmp_path / "viewer.yaml", doc)
    r = fleet("status", path, env={"NETRC": str(netrc)})
    assert r.returncode == 0, r.stdout + r.stderr
    r = fleet("config", "push", path, env={"NETRC": str(netrc)})
    assert r.returncode == 1 and r.stdout.startswith("cam9: unauthorised"), r.stdout
    assert list(cam.get("/api/config")["zones"]) == ["gate"]


def test_cameras_that_die_during_a_push_are_reported_and_keep_their_configuration(site, tmp_path):
    """Two cameras lose power while the push waits on them (their links held by a proxy): the others apply,
    the two are reported, and when they come back they run what they ran before. Runs last: it kills two."""
    held = {c.name: HoldingProxy(c.port, hold=True) for c in site[-2:]}
    sites = {c.name: {"zones": {f"late{c.i}": ZONE}} for c in site}
    urls = {name: f"http://127.0.0.1:{p.port}/" for name, p in held.items()}
    path = write(tmp_path / "fleet.yaml", fleet_doc(site, urls=urls, sites=sites))
    before = {c.name: c.site_file() for c in site[-2:]}
    push = subprocess.Popen([sys.executable, "-m", "app", "fleet", "config", "push", path, "--json"], cwd=ROOT,
                            env=fleet_env(tokens(site)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: all(p.waiting for p in held.values()), 60, 0.05, "the push to reach the two cameras")
        for c in site[-2:]:
            c.kill()
        for p in held.values():
            p.release()
        out, err = push.communicate(timeout=120)
    finally:
        for p in held.values():
            p.close()
    assert push.returncode == 1, out + err
    results = {x["name"]: x for x in json.loads(out)}
    for c in site[:-2]:
        assert results[c.name]["outcome"] == "applied" and f"late{c.i}" in c.get("/api/config")["zones"]
    for c in site[-2:]:
        assert results[c.name]["outcome"] == "unreachable" and "keeps the configuration it had" in results[c.name]["detail"]
        assert c.site_file() == before[c.name]
        c.start()
    wait_all(site[-2:], 240)
    for c in site[-2:]:
        assert f"late{c.i}" not in (c.get("/api/config")["zones"] or {})


@pytest.fixture(scope="module")
def apache_cam(tmp_path_factory, mosquitto):
    """One Vigil as on a camera (read and admin ports, no token) for proxies of each kind in front of it."""
    from tests.apache_proxy import available

    why = available()
    if why:
        pytest.fail(why, pytrace=False)
    cam = Instance(tmp_path_factory.mktemp("apache"), 8, mosquitto.port, camera=True).start()
    try:
        wait_all([cam], 240)
        yield cam, cam.admin_port
    finally:
        cam.stop()


def camera_doc(proxy, zone: str, **defaults) -> dict:
    return {"defaults": {"user": "admin", "password_env": "CAM_PW", **defaults},
            "cameras": {"cam8": {"url": f"{proxy.url}/local/vigil/", "site": {"zones": {zone: ZONE}}}}}


def test_basic_authentication_through_apache_status_and_push(apache_cam, tmp_path):
    from tests.apache_proxy import USERS, Proxy

    cam, admin = apache_cam
    proxy = Proxy(auth="basic").start(cam.port, admin)
    try:
        path = write(tmp_path / "fleet.yaml", camera_doc(proxy, "basic_gate", auth="basic"))
        env = {"CAM_PW": USERS["admin"]}
        r = fleet("status", path, "--json", env=env)
        assert r.returncode == 0, r.stdout + r.stderr
        assert json.loads(r.stdout)["cameras"][0]["device_id"] == "cam8"
        # basic over plain http: said, as the password crosses the network readable
        assert "basic authentication over plain http" in r.stderr
        r = fleet("config", "push", path, env=env)
        assert r.returncode == 0 and r.stdout.startswith("cam8: applied"), r.stdout + r.stderr
        assert list(cam.get("/api/config")["zones"]) == ["basic_gate"]
        r = fleet("config", "push", path, env={"CAM_PW": "wrong"})
        assert r.returncode == 1 and r.stdout.startswith("cam8: unauthorised"), r.stdout + r.stderr
    finally:
        proxy.stop()


def test_a_push_over_tls_with_the_sites_ca_without_it_and_insecure(apache_cam, tmp_path):
    """apache2 serving https with a certificate signed by a CA made here (openssl CLI), basic authentication."""
    from tests.apache_proxy import USERS, Proxy
    from tests.test_mqtt_faults import make_certs

    cam, admin = apache_cam
    certs = make_certs(tmp_path)
    for f in certs.iterdir():
        f.chmod(0o644)
    proxy = Proxy(auth="basic", tls=(certs / "server.pem", certs / "server.key")).start(cam.port, admin)
    env = {"CAM_PW": USERS["admin"]}
    try:
        assert proxy.url.startswith("https://")
        # the site's CA in the fleet file: status and push work, and nothing is said about TLS
        path = write(tmp_path / "ca.yaml", camera_doc(proxy, "tls_gate", auth="basic", ca=str(certs / "ca.pem")))
        r = fleet("status", path, "--json", env=env)
        assert r.returncode == 0 and "WARNING" not in r.stderr, r.stdout + r.stderr
        r = fleet("config", "push", path, env=env)
        assert r.returncode == 0 and r.stdout.startswith("cam8: applied") and "WARNING" not in r.stderr, r.stdout + r.stderr
        assert list(cam.get("/api/config")["zones"]) == ["tls_gate"]
        # no CA: the system's trust store does not know the site's CA; one line names the certificate problem
        path = write(tmp_path / "noca.yaml", camera_doc(proxy, "untrusted", auth="basic"))
        r = fleet("config", "push", path, env=env)
        lines = r.stdout.strip().splitlines()  # the camera's line, then the summary
        assert r.returncode == 1 and len(lines) == 2 and "Traceback" not in r.stderr, r.stdout + r.stderr
        assert lines[0].startswith("cam8: unreachable: TLS certificate not trusted (CERTIFICATE_VERIFY_FAILED: unable to "
                                   "get local issuer certificate)"), lines
        assert "`ca:`" in lines[0] and "--insecure" in lines[0] and lines[0].endswith("nothing was sent")
        assert list(cam.get("/api/config")["zones"]) == ["tls_gate"]  # nothing was sent
        r = fleet("status", path, env=env)
        assert r.returncode == 1 and "certificate" in r.stdout, r.stdout
        # --insecure: works, and says loudly that nothing was checked
        r = fleet("config", "push", path, "--insecure", env=env)
        assert r.returncode == 0 and r.stdout.startswith("cam8: applied"), r.stdout + r.stderr
        assert "WARNING: --insecure: TLS certificates are NOT checked" in r.stderr
        assert list(cam.get("/api/config")["zones"]) == ["untrusted"]
    finally:
        proxy.stop()
