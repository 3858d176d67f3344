#!/usr/bin/python3
"""The official Kubernetes Python client against a fresh embedded cluster: list, watch from a
resourceVersion, resume a watch where it stopped, and a 410 for a resourceVersion that is gone.

Usage: python_client_test.py PATH/TO/archipel
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

from kubernetes import client, watch
from kubernetes.client.rest import ApiException

passed = 0
failed = 0


def check(name, condition, detail=""):
    global passed, failed
    if condition:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name} {detail}")


def start(binary, data):
    proc = subprocess.Popen([binary, "cluster", "--listen", "127.0.0.1:0", "--data", data],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline().strip()
    port = line.rsplit(":", 1)[1]
    config = client.Configuration()
    config.host = f"http://127.0.0.1:{port}"
    return proc, client.CoreV1Api(client.ApiClient(config))


def configmap(name, value):
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name), data={"k": value})


def events(api, ns, rv, count):
    """The first `count` events of a watch from `rv`, as (type, name, resourceVersion)."""
    out = []
    w = watch.Watch()
    for e in w.stream(api.list_namespaced_config_map, ns, resource_version=rv, timeout_seconds=10):
        out.append((e["type"], e["object"].metadata.name, e["object"].metadata.resource_version))
        if len(out) == count:
            w.stop()
    return out


def main():
    data = tempfile.mkdtemp(prefix="archipel-py-")
    proc, api = start(sys.argv[1], data)
    try:
        api.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="py")))
        api.create_namespaced_config_map("py", configmap("a", "1"))
        listed = api.list_namespaced_config_map("py")
        check("list", [c.metadata.name for c in listed.items] == ["a"])
        rv = listed.metadata.resource_version
        check("list-resource-version", rv.isdigit(), rv)

        api.create_namespaced_config_map("py", configmap("b", "2"))
        api.patch_namespaced_config_map("a", "py", {"data": {"k": "3"}})
        api.delete_namespaced_config_map("b", "py")
        seen = events(api, "py", rv, 3)
        check("watch-replays", [(t, n) for t, n, _ in seen] ==
              [("ADDED", "b"), ("MODIFIED", "a"), ("DELETED", "b")], seen)

        # Resume from the middle: only what followed.
        resumed = events(api, "py", seen[0][2], 2)
        check("watch-resumes", [(t, n) for t, n, _ in resumed] ==
              [("MODIFIED", "a"), ("DELETED", "b")], resumed)

        # After a restart the history is gone: an old resourceVersion is 410 Gone.
        proc.terminate()
        proc.wait(timeout=10)
        proc, api = start(sys.argv[1], data)
        check("survives-restart", api.read_namespaced_config_map("a", "py").data == {"k": "3"})
        try:
            events(api, "py", rv, 1)
            check("watch-expired", False, "no error")
        except ApiException as e:
            check("watch-expired", e.status == 410, e.status)
        except Exception as e:  # the client raises the ERROR event it read
            check("watch-expired", "410" in str(e) or "Expired" in str(e), repr(e))

        try:
            api.read_namespaced_config_map("nope", "py")
            check("not-found", False)
        except ApiException as e:
            check("not-found", e.status == 404 and '"reason":"NotFound"' in e.body, e.body)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(data, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
