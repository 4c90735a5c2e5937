"""The read-only container list."""


def test_running_and_stopped_containers(client, headers, images):
    running = images.container("sleep 60", keep_running=True)
    stopped = images.container("true")
    only_running = client.get("/v1/containers", headers=headers("read")).get_json()["containers"]
    ids = {c["id"] for c in only_running}
    assert running in ids and stopped not in ids
    everything = client.get("/v1/containers?all=true", headers=headers("read")).get_json()
    by_id = {c["id"]: c for c in everything["containers"]}
    assert {running, stopped} <= set(by_id)
    assert by_id[running]["state"] == "running"
    assert by_id[stopped]["state"] == "exited"
    assert by_id[stopped]["name"].startswith("berth-ctr-")
    assert by_id[stopped]["image"] == "berth-test/busybox:latest"
    assert by_id[stopped]["created"].endswith("Z")
