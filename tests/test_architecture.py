"""docs/architecture.md is true: its "where to add" table names every plugin registry and where their
modules live, and its list of threads names every thread a run starts."""
import importlib
import re
import threading

from app import pipeline
from app.config import PLUGINS, load_config
from app.plugins import Registry
from tests.conftest import ROOT
from tests.mqtt_util import free_port
from tests.test_mqtt import FAST, SCENE

DOC = (ROOT / "docs" / "architecture.md").read_text()


def where_to_add() -> dict[str, tuple[str, str, str]]:
    """The table's rows: kind -> (the module to write, the registry's name, the file it is in)."""
    table = DOC[DOC.index("| to add a… |"):]
    rows = {}
    for line in table.splitlines()[2:]:
        if not line.startswith("|"):
            break
        kind, write, register = (c.strip() for c in line.strip("|").split("|"))
        registered = re.fullmatch(r"`(\w+)` in `([\w/.]+)`", register)
        module = re.match(r"`([\w/<>.]+)`", write)
        assert registered and module, f"a row reads: | {kind} | `app/…/<name>.py` … | `REGISTRY` in `app/…` |: {line}"
        rows[kind] = (module.group(1), *registered.groups())
    return rows


def test_the_where_to_add_table_names_every_registry_and_where_its_modules_are():
    rows = where_to_add()
    named = {}
    for kind, (write, name, where) in rows.items():
        module = importlib.import_module(where.removesuffix(".py").replace("/", ".").removesuffix(".__init__"))
        registry = getattr(module, name)  # the registry is where the table says
        if isinstance(registry, Registry):
            named[registry.key] = kind
            folder = write.rsplit("/", 1)[0]  # app/backends/<name>.py: every registered module is in app/backends/
            for path in registry.modules.values():
                assert path.startswith(folder.replace("/", ".") + "."), (kind, path)
    missing = {r.key for r in PLUGINS} - set(named)
    assert not missing, f"registries without a row in docs/architecture.md: {missing}"
    undeclared = set(named) - {r.key for r in PLUGINS}
    assert not undeclared, f"rows whose registry is not in app.config.PLUGINS: {undeclared}"


def test_every_thread_a_run_starts_is_in_the_architecture_pages_list(mosquitto, tmp_path):
    listed = set(re.findall(r"^\| `([\w*-]+)` \|", DOC[DOC.index("### Every thread of a run"):], re.M))
    seen: set[str] = set()
    before = set(threading.enumerate()) - {threading.current_thread()}  # other tests' threads, if any

    class Threads:
        def on_result(self, r):
            seen.update(t.name for t in set(threading.enumerate()) - before)

        def close(self):
            pass

    cfg = load_config(None, {**FAST, **SCENE, "state.file": str(tmp_path / "state.json"), "device_id": "threads",
                             "source.live": True, "mqtt": {"enabled": True, "port": mosquitto.port},
                             "api": {"enabled": True, "port": free_port()}}, env={})
    pipeline.run(cfg, max_frames=20, consumers=[Threads()])
    assert {"MainThread", "capture", "prepare", "outputs", "expiry", "api", "mqtt-send", "watchdog",
            "line-journal"} <= seen
    unlisted = {name for name in seen if not any(re.fullmatch(p.replace("*", ".*"), name) for p in listed)}
    assert not unlisted, f"threads missing from docs/architecture.md: {unlisted}"
