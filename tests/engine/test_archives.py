"""Archives against the real engine: save, load, export, import, and every way an upload fails."""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
import threading
import time

import pytest

from app import create_app
from app.domain.tar_framing import (
    TarFraming,
    TarFramingError,
    classify_archive_error,
    engine_error_text,
    engine_reason,
    image_archive_name,
    parse_load_messages,
)
from app.engine.base import EngineConnection
from app.engine.read_ahead import ReadAhead
from app.errors import EngineError, ImageNotFound, InvalidArchive, PayloadTooLarge
from app.http.accessors import get_engine, services
from app.http.uploads import UploadStream, complete_tar
from tests.support.images import unique

TAR = {"Content-Type": "application/x-tar"}


def image_list(docker_client) -> list[tuple[str, tuple[str, ...]]]:
    """Every image of the engine (intermediate ones too) with its tags, as a comparable list."""
    return sorted(
        (i["Id"], tuple(sorted(i.get("RepoTags") or [])))
        for i in docker_client.api.images(all=True)
    )


def members(archive: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(archive)) as tf:
        return {m.name: m for m in tf.getmembers()}


def read_member(archive: bytes, name: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(archive)) as tf:
        return tf.extractfile(name).read()


def rootfs_tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def normalised(names) -> set[str]:
    return {n.removeprefix("./").rstrip("/") for n in names} - {"", "."}


def history_steps(docker_client, image_id: str) -> list[tuple]:
    return [
        (h["Created"], h["CreatedBy"], h["Size"], h["Comment"])
        for h in docker_client.api.history(image_id)
    ]


def problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["code"] == code
    return body


def load(client, headers, data: bytes, **kwargs):
    return client.post("/v1/archives", data=data, headers={**headers("write"), **TAR}, **kwargs)


@pytest.fixture
def saved_and_removed(images, docker_client):
    """A small image's `docker save` archive, the image itself removed: (id, ref, archive)."""
    image_id, ref = images.image("head -c 300000 /dev/urandom > /blob")
    archive = b"".join(docker_client.api.get_image(ref))
    docker_client.api.remove_image(image_id, force=True)
    return image_id, ref, archive


# Plain logic


def test_archive_file_names_follow_the_reference():
    assert image_archive_name("ubuntu:14.04") == "ubuntu_14.04.tar"
    assert image_archive_name("127.0.0.1:5000/team/app:1.0") == "127.0.0.1_5000_team_app_1.0.tar"
    assert image_archive_name("sha256:" + "ab" * 32) == "sha256_abababababab.tar"


def test_load_messages_give_references_and_untagged_ids():
    report = parse_load_messages(
        [
            "Loading layer  1.2MB/1.2MB",
            "Loaded image: team/app:1.0",
            "Loaded image: team/app:1.0",
            "Loaded image ID: sha256:" + "c" * 64,
            "Loaded image: 127.0.0.1:5000/x:2",
        ]
    )
    assert report.references == ["team/app:1.0", "127.0.0.1:5000/x:2"]
    assert report.image_ids == ["sha256:" + "c" * 64]
    assert parse_load_messages(["nothing here"]).empty


def test_engine_reasons_keep_the_message_but_not_host_paths():
    message = (
        "open /var/lib/docker/tmp/docker-import-1412705554/repositories: no such file or directory"
    )
    assert engine_reason(message) == "open repositories: no such file or directory"
    assert "/srv" not in engine_reason("failed to register layer: /srv/docker/overlay2/x/diff")
    assert isinstance(classify_archive_error("archive/tar: invalid tar header"), InvalidArchive)
    full = classify_archive_error("write /var/lib/docker/tmp/x: no space left on device")
    assert isinstance(full, EngineError) and "/var/lib" not in full.detail


def test_tar_framing_accepts_whole_archives_in_any_chunking(docker_client, base_image):
    archive = b"".join(docker_client.api.get_image(base_image))
    for size in (1, 511, 512, 513, 65536, len(archive)):
        framing = TarFraming()
        for i in range(0, len(archive), size):
            framing.feed(archive[i : i + size])
        framing.finish()
    pax = io.BytesIO()
    with tarfile.open(fileobj=pax, mode="w", format=tarfile.PAX_FORMAT) as tf:
        info = tarfile.TarInfo("ünïcode/" + "n" * 150)
        info.size = 3000
        tf.addfile(info, io.BytesIO(b"x" * 3000))
    framing = TarFraming()
    framing.feed(pax.getvalue())  # PAX headers, and zero padding to the record size
    framing.finish()


def test_tar_framing_spots_an_engine_error_written_into_the_stream(docker_client, base_image):
    archive = b"".join(docker_client.api.get_image(base_image))
    third_header = list(members(archive).values())[2].offset
    # What the engine writes when `docker save` fails after its first bytes (then it ends the
    # response normally).
    error = b'{"errorDetail":{"message":"open /var/lib/docker/overlay2/x/diff: no such file"}}\r\n'
    framing = TarFraming()
    framing.feed(archive[:third_header])
    framing.feed(error)
    with pytest.raises(TarFramingError) as caught:
        framing.finish()
    assert engine_error_text(caught.value.tail) == "open diff: no such file"
    framing = TarFraming()
    with pytest.raises(TarFramingError):
        framing.feed(archive[:third_header] + error * 10)  # a whole block of it: no header
    framing = TarFraming()
    with pytest.raises(TarFramingError):
        framing.feed(archive + error)  # after the end blocks
    for cut in (0, 100, third_header, len(archive) // 2, len(archive) - 512):
        framing = TarFraming()
        framing.feed(archive[:cut])
        with pytest.raises(TarFramingError):
            framing.finish()


def test_upload_stream_counts_limits_and_notices_short_bodies():
    data = os.urandom(10_000)
    upload = UploadStream(io.BytesIO(data), declared_length=None, limit=None, chunk_size=4096)
    assert upload.peek() == data[:4096]
    assert b"".join(upload) == data and upload.received == len(data) and upload.complete
    with pytest.raises(PayloadTooLarge):
        UploadStream(io.BytesIO(data), declared_length=len(data), limit=9_999)
    chunked = UploadStream(io.BytesIO(data), declared_length=None, limit=5_000, chunk_size=4096)
    with pytest.raises(PayloadTooLarge):
        list(chunked)
    assert chunked.received <= 5_000 + 4096
    short = UploadStream(io.BytesIO(data), declared_length=20_000, limit=None)
    with pytest.raises(InvalidArchive, match="ended after"):
        list(short)
    assert UploadStream(io.BytesIO(b""), declared_length=None, limit=None).empty

    class Broken(io.RawIOBase):
        def readable(self):
            return True

        def readinto(self, b):
            raise ConnectionResetError("peer gone")

    with pytest.raises(InvalidArchive, match="broke off"):
        list(UploadStream(Broken(), declared_length=None, limit=None))


def test_complete_tar_passes_whole_or_compressed_bodies_and_stops_truncated_ones():
    archive = rootfs_tar({"a": b"1" * 2000, "b": b"2" * 2000})
    assert b"".join(complete_tar([archive[:700], archive[700:]])) == archive
    compressed = gzip.compress(archive)[:50]  # truncated too, but that is the engine's to judge
    assert b"".join(complete_tar([compressed])) == compressed
    passed = []
    with pytest.raises(InvalidArchive, match="truncated"):
        for chunk in complete_tar([archive[:512], archive[512:2560]]):  # cut between members
            passed.append(chunk)
    assert passed == [archive[:512]]  # the last chunk was held back: the body stays incomplete
    # Cut inside a member: passed on whole, for the engine to reject with its own reason.
    assert b"".join(complete_tar([archive[:1000]])) == archive[:1000]


def test_read_ahead_keeps_order_bounds_memory_and_passes_errors_on():
    produced = []

    def source():
        for i in range(10):
            produced.append(i)
            yield bytes([i])
        raise InvalidArchive("broke")

    ahead = ReadAhead(source(), depth=2)
    assert next(ahead) == b"\x00"
    time.sleep(0.2)
    assert len(produced) <= 1 + 2 + 1  # the one handed out, the queue, the one waiting
    assert b"".join(next(ahead) for _ in range(9)) == bytes(range(1, 10))
    with pytest.raises(InvalidArchive, match="broke"):
        next(ahead)
    ahead.close()


def test_read_ahead_close_stops_interrupts_and_closes_its_source():
    release = threading.Event()
    events = []

    def blocked():
        try:
            yield b"first"
            release.wait(10)  # a read that only an interrupt ends
            yield b"never handed out"
        finally:
            events.append("source closed")

    ahead = ReadAhead(blocked(), interrupt=lambda: (events.append("interrupted"), release.set()))
    assert next(ahead) == b"first"
    time.sleep(0.1)
    started = time.monotonic()
    ahead.close()
    assert time.monotonic() - started < 2
    assert events == ["interrupted", "source closed"]
    assert list(ahead) == []
    unused = ReadAhead(iter([b"x"]))
    unused.close()  # never iterated: no thread was started
    assert unused._thread is None


# Save and load


def test_save_delete_load_restores_the_identical_image(client, headers, images, docker_client):
    repo = unique()
    _, parent = images.image("echo one > /one", repository=repo, tag="1.0")
    image_id, ref = images.image(
        "echo two > /two",
        repository=repo,
        tag="2.0",
        base=parent,
        changes=['CMD ["cat", "/two"]', "ENV STEP=two", "LABEL team=berth"],
        message="second step",
    )
    before = docker_client.api.inspect_image(image_id)
    history = history_steps(docker_client, image_id)

    saved = client.get(f"/v1/images/{ref}/archive", headers=headers("read"))
    assert saved.status_code == 200
    assert saved.mimetype == "application/x-tar"
    assert saved.headers["Content-Disposition"] == f"attachment; filename={repo}_2.0.tar"
    archive = saved.data
    manifest = json.loads(read_member(archive, "manifest.json"))
    assert [entry["RepoTags"] for entry in manifest] == [[ref]]

    docker_client.api.remove_image(image_id, force=True)
    assert image_id not in {i["Id"] for i in docker_client.api.images(all=True)}

    loaded = load(client, headers, archive)
    assert loaded.status_code == 201, loaded.get_data(as_text=True)
    assert loaded.get_json() == {"loaded": [ref], "ids": [image_id]}
    after = docker_client.api.inspect_image(ref)
    assert after["Id"] == image_id
    assert after["RepoTags"] == [ref]
    assert after["Config"] == before["Config"]
    assert after["RootFS"] == before["RootFS"]
    assert history_steps(docker_client, image_id) == history


def test_multi_image_archive_restores_every_image_and_every_tag(
    client, headers, images, docker_client
):
    repo_a, repo_b = unique(), unique()
    id_a, _ = images.image("echo a > /a", repository=repo_a, tag="1")
    docker_client.api.tag(id_a, repo_a, "2")
    id_b, ref_b = images.image("echo b > /b", repository=repo_b, tag="x")
    id_c, _ = images.image("echo c > /c", repository=repo_a, tag="3")

    saved = client.get(
        f"/v1/archives?reference={repo_a}&reference={ref_b}&reference={ref_b}",
        headers=headers("read"),
    )
    assert saved.status_code == 200, saved.get_data(as_text=True)
    assert saved.headers["Content-Disposition"] == "attachment; filename=images.tar"
    tags = {
        tag
        for entry in json.loads(read_member(saved.data, "manifest.json"))
        for tag in entry["RepoTags"]
    }
    assert tags == {f"{repo_a}:1", f"{repo_a}:2", f"{repo_a}:3", ref_b}

    for image_id in (id_a, id_b, id_c):
        docker_client.api.remove_image(image_id, force=True)
    loaded = load(client, headers, saved.data)
    assert loaded.status_code == 201, loaded.get_data(as_text=True)
    body = loaded.get_json()
    assert sorted(body["loaded"]) == sorted(tags)
    assert sorted(body["ids"]) == sorted({id_a, id_b, id_c})
    assert sorted(docker_client.api.inspect_image(id_a)["RepoTags"]) == [
        f"{repo_a}:1",
        f"{repo_a}:2",
    ]
    assert docker_client.api.inspect_image(id_b)["RepoTags"] == [ref_b]
    assert docker_client.api.inspect_image(id_c)["RepoTags"] == [f"{repo_a}:3"]


def test_a_bare_name_saves_its_latest_tag_only(client, headers, images, docker_client):
    repo = unique()
    latest_id, _ = images.image("echo new > /f", repository=repo, tag="latest")
    images.image("echo old > /f", repository=repo, tag="old")
    saved = client.get(f"/v1/images/{repo}/archive", headers=headers("read"))
    assert saved.status_code == 200
    assert saved.headers["Content-Disposition"] == f"attachment; filename={repo}_latest.tar"
    manifest = json.loads(read_member(saved.data, "manifest.json"))
    assert [entry["RepoTags"] for entry in manifest] == [[f"{repo}:latest"]]
    assert manifest[0]["Config"] == latest_id.removeprefix("sha256:") + ".json"


def test_an_archive_saved_by_id_loads_untagged_and_reports_the_id(
    client, headers, images, docker_client
):
    image_id, _ = images.image("echo id > /id")
    saved = client.get(f"/v1/images/{image_id}/archive", headers=headers("read"))
    assert saved.status_code == 200
    assert saved.headers["Content-Disposition"].endswith(f"{image_id[:19].replace(':', '_')}.tar")
    docker_client.api.remove_image(image_id, force=True)
    loaded = load(client, headers, saved.data)
    assert loaded.status_code == 201
    assert loaded.get_json() == {"loaded": [], "ids": [image_id]}
    assert docker_client.api.inspect_image(image_id)["RepoTags"] == []


def test_gzip_archive_loads_and_ndjson_streams_progress_then_the_result(
    client, headers, saved_and_removed
):
    image_id, ref, archive = saved_and_removed
    response = client.post(
        "/v1/archives",
        data=gzip.compress(archive, compresslevel=1),
        headers={
            **headers("write"),
            "Content-Type": "application/gzip",
            "Accept": "application/x-ndjson",
        },
    )
    assert response.status_code == 200
    assert response.mimetype == "application/x-ndjson"
    lines = [json.loads(line) for line in response.get_data(as_text=True).splitlines()]
    assert any(line.get("status", "").startswith("Loading layer") for line in lines[:-1])
    assert lines[-1] == {"result": {"loaded": [ref], "ids": [image_id]}}


def test_chunked_upload_loads(client, headers, saved_and_removed, docker_client):
    image_id, ref, archive = saved_and_removed
    response = client.post(
        "/v1/archives",
        data=archive,
        headers={**headers("write"), "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.get_json()["ids"] == [image_id]


def test_save_errors_are_problems_before_any_byte(client, headers, images):
    missing = f"{unique()}:1"
    problem(
        client.get(f"/v1/images/{missing}/archive", headers=headers("read")), 404, "IMAGE_NOT_FOUND"
    )
    _, ref = images.image("true")
    body = problem(
        client.get(f"/v1/archives?reference={ref}&reference={missing}", headers=headers("read")),
        404,
        "IMAGE_NOT_FOUND",
    )
    assert missing in body["detail"]
    problem(
        client.get(f"/v1/archives?reference={unique()}", headers=headers("read")),
        404,
        "IMAGE_NOT_FOUND",
    )
    problem(
        client.get("/v1/images/Bad..Name/archive", headers=headers("read")),
        400,
        "INVALID_REFERENCE",
    )
    problem(client.get("/v1/archives", headers=headers("read")), 400, "VALIDATION_FAILED")
    problem(
        client.get("/v1/archives?reference=UPPER", headers=headers("read")),
        400,
        "VALIDATION_FAILED",
    )
    problem(client.get(f"/v1/images/{ref}/archive"), 401, "UNAUTHORIZED")


def test_loading_needs_the_write_scope_and_a_tar_type(client, headers, saved_and_removed):
    _, _, archive = saved_and_removed
    problem(
        client.post("/v1/archives", data=archive, headers={**headers("read"), **TAR}),
        403,
        "FORBIDDEN",
    )
    wrong = client.post(
        "/v1/archives",
        data=archive,
        headers={**headers("write"), "Content-Type": "application/x-www-form-urlencoded"},
    )
    problem(wrong, 415, "UNSUPPORTED_MEDIA_TYPE")


def engine_connections(harness) -> int:
    """Connections open on the engine's socket (its accepted sockets share the path)."""
    path = harness["docker_host"].removeprefix("unix://")
    with open("/proc/net/unix") as table:
        return sum(1 for line in table if line.split()[-1:] == [path]) - 1  # minus the listener


@pytest.mark.parametrize("through", ["unix socket, HTTP/1.0", "docker-py"])
def test_downloads_are_the_engines_bytes_on_either_path(
    app, client, headers, images, docker_client, monkeypatch, through
):
    """On the engine's unix socket downloads are asked for in HTTP/1.0; over TCP or TLS they
    come through docker-py (taken here by hiding the socket path)."""
    if through == "docker-py":
        monkeypatch.setattr(EngineConnection, "unix_socket", property(lambda self: None))
    image_id, ref = images.image("head -c 3000000 /dev/urandom > /blob")
    saved = client.get(f"/v1/images/{ref}/archive", headers=headers("read"))
    assert saved.status_code == 200
    assert saved.data == b"".join(docker_client.api.get_image(ref))

    container = docker_client.containers.create(image_id, ["true"], network_mode="none")
    try:
        exported = client.get(f"/v1/containers/{container.id}/export", headers=headers("export"))
        assert exported.status_code == 200
        assert exported.data == b"".join(docker_client.api.export(container.id))
    finally:
        container.remove()
    # An image gone between the route's check and the engine's answer: the engine's 404, read
    # from either path, is IMAGE_NOT_FOUND before any byte.
    with app.app_context(), pytest.raises(ImageNotFound):
        get_engine().save_images([f"{unique()}:1"])


def test_closing_a_download_early_closes_its_engine_connection(app, harness, images):
    _, ref = images.image("head -c 20000000 /dev/urandom > /blob")
    with app.app_context():
        engine = get_engine()
        engine.inspect_image_raw(ref)  # the metadata connection is open before counting
        baseline = engine_connections(harness)
        stream = engine.save_images([ref])
        assert len(next(stream)) > 0
        assert engine_connections(harness) == baseline + 1
        stream.close()  # what the server calls when the client goes away
        deadline = time.monotonic() + 10
        while engine_connections(harness) != baseline and time.monotonic() < deadline:
            time.sleep(0.05)
        assert engine_connections(harness) == baseline  # closed, not merely dropped
        assert stream.closed and list(stream) == []


# Uploads that must load nothing


def test_garbage_truncated_and_empty_loads_are_400_and_change_nothing(
    client, headers, docker_client, saved_and_removed
):
    _, _, archive = saved_and_removed
    before = image_list(docker_client)
    not_an_image = rootfs_tar({"hello.txt": b"hi\n"})
    for body in (
        os.urandom(100_000),
        archive[: len(archive) // 2],
        archive[:-2048],
        b"",
        not_an_image,
        gzip.compress(archive)[:20_000],
    ):
        detail = problem(load(client, headers, body), 400, "INVALID_ARCHIVE")["detail"]
        assert "docker-import" not in detail and "/tmp/" not in detail and "/var/" not in detail
        assert image_list(docker_client) == before

    streamed = client.post(
        "/v1/archives",
        data=archive[: len(archive) // 3],
        headers={**headers("write"), **TAR, "Accept": "application/x-ndjson"},
    )
    last = json.loads(streamed.get_data(as_text=True).splitlines()[-1])
    assert last["error"]["code"] == "INVALID_ARCHIVE" and "result" not in last
    assert image_list(docker_client) == before


def test_an_upload_that_ends_before_its_content_length_loads_nothing(
    client, headers, docker_client, saved_and_removed
):
    _, _, archive = saved_and_removed
    before = image_list(docker_client)
    response = client.post(
        "/v1/archives",
        data=archive,
        headers={**headers("write"), **TAR},
        environ_overrides={"CONTENT_LENGTH": str(len(archive) + 4096)},  # the client vanished
    )
    assert problem(response, 400, "INVALID_ARCHIVE")["detail"].startswith("The upload")
    assert image_list(docker_client) == before


def test_upload_over_the_limit_is_413_whether_announced_or_chunked(
    config, headers, docker_client, saved_and_removed
):
    _, _, archive = saved_and_removed
    config["BERTH_MAX_UPLOAD_BYTES"] = len(archive) // 2
    app = create_app(config)
    try:
        client = app.test_client()
        before = image_list(docker_client)
        problem(load(client, headers, archive), 413, "PAYLOAD_TOO_LARGE")
        chunked = client.post(
            "/v1/archives",
            data=archive,
            headers={**headers("write"), **TAR, "Transfer-Encoding": "chunked"},
            environ_overrides={"wsgi.input_terminated": True},
        )
        problem(chunked, 413, "PAYLOAD_TOO_LARGE")
        # The engine got a body cut short mid-stream, and loaded nothing from it.
        assert image_list(docker_client) == before
        imported = client.post(
            "/v1/images/import",
            data=archive,
            headers={**headers("write"), **TAR, "Transfer-Encoding": "chunked"},
            environ_overrides={"wsgi.input_terminated": True},
        )
        problem(imported, 413, "PAYLOAD_TOO_LARGE")
        assert image_list(docker_client) == before
    finally:
        services(app).engines.close()


# Export and import


def test_export_then_import_gives_one_layer_with_the_same_files_but_no_history_or_config(
    client, headers, images, docker_client
):
    _, ref = images.image(
        "mkdir -p /data && echo hello > /data/hello.txt",
        changes=[
            'CMD ["cat", "/data/hello.txt"]',
            "ENV GREETING=hi",
            "LABEL team=berth",
            "WORKDIR /data",
        ],
    )
    container_id = images.container("echo more > /data/more.txt", image=ref)
    name = docker_client.api.inspect_container(container_id)["Name"].lstrip("/")

    exported = client.get(f"/v1/containers/{name}/export", headers=headers("export"))
    assert exported.status_code == 200
    assert exported.mimetype == "application/x-tar"
    assert exported.headers["Content-Disposition"] == f"attachment; filename={name}.tar"
    files = normalised(members(exported.data))
    assert {"data/hello.txt", "data/more.txt", "bin/sh"} <= files

    repo = unique()
    imported = client.post(
        f"/v1/images/import?reference={repo}:1&message=from%20export",
        data=exported.data,
        headers={**headers("write"), **TAR},
    )
    assert imported.status_code == 201, imported.get_data(as_text=True)
    body = imported.get_json()
    images.track(body["id"])
    assert body["reference"] == f"{repo}:1"
    assert imported.headers["Location"] == f"/v1/images/{repo}:1"

    original = docker_client.api.inspect_image(ref)
    copy = docker_client.api.inspect_image(body["id"])
    assert copy["RepoTags"] == [f"{repo}:1"]
    # One layer holding the same files...
    assert len(original["RootFS"]["Layers"]) == 2 and len(copy["RootFS"]["Layers"]) == 1
    saved = b"".join(docker_client.api.get_image(body["id"]))
    layer = [n for n in members(saved) if n.endswith("/layer.tar")]
    assert len(layer) == 1
    assert normalised(members(read_member(saved, layer[0]))) == files
    # ...but, as export promises, neither the original's history nor its config.
    assert len(docker_client.api.history(ref)) == 2
    assert [h["Comment"] for h in docker_client.api.history(body["id"])] == ["from export"]
    assert original["Config"]["Cmd"] == ["cat", "/data/hello.txt"] and copy["Config"]["Cmd"] is None
    assert "GREETING=hi" in original["Config"]["Env"]
    assert "GREETING=hi" not in (copy["Config"]["Env"] or [])
    assert original["Config"]["Labels"] == {"team": "berth"} and not copy["Config"]["Labels"]
    assert original["Config"]["WorkingDir"] == "/data" and copy["Config"]["WorkingDir"] == ""


def test_import_applies_changes_and_accepts_gzip(client, headers, images, docker_client):
    body = gzip.compress(rootfs_tar({"app/run.sh": b"echo hi\n"}))
    response = client.post(
        f"/v1/images/import?reference={unique()}&change=CMD%20%5B%22sh%22%2C%20%22/app/run.sh%22%5D"
        "&change=ENV%20MODE=prod",
        data=body,
        headers={**headers("write"), "Content-Type": "application/gzip"},
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    result = response.get_json()
    images.track(result["id"])
    assert result["reference"].endswith(":latest")
    config = docker_client.api.inspect_image(result["id"])["Config"]
    assert config["Cmd"] == ["sh", "/app/run.sh"]
    assert "MODE=prod" in config["Env"]


def test_import_without_a_reference_creates_an_untagged_image(
    client, headers, images, docker_client
):
    response = client.post(
        "/v1/images/import", data=rootfs_tar({"f": b"x"}), headers={**headers("write"), **TAR}
    )
    assert response.status_code == 201
    result = response.get_json()
    images.track(result["id"])
    assert result["reference"] is None
    assert response.headers["Location"] == f"/v1/images/{result['id']}"
    assert docker_client.api.inspect_image(result["id"])["RepoTags"] == []


def test_import_checks_its_parameters_before_reading_the_body(client, headers):
    tar = rootfs_tar({"f": b"x"})
    bad_change = client.post(
        "/v1/images/import?change=RUN%20rm%20-rf%20/", data=tar, headers={**headers("write"), **TAR}
    )
    assert "change[0]" in problem(bad_change, 400, "VALIDATION_FAILED")["detail"]
    with_digest = client.post(
        "/v1/images/import?reference=app@sha256:" + "a" * 64,
        data=tar,
        headers={**headers("write"), **TAR},
    )
    problem(with_digest, 400, "VALIDATION_FAILED")
    problem(
        client.post("/v1/images/import", data=tar, headers={**headers("read"), **TAR}),
        403,
        "FORBIDDEN",
    )


def test_garbage_truncated_and_empty_imports_are_400_and_change_nothing(
    client, headers, docker_client
):
    before = image_list(docker_client)
    tar = rootfs_tar({"a": os.urandom(3072), "b": os.urandom(3072), "c": os.urandom(3072)})
    member = 512 + 3072
    # garbage, empty, cut inside a member, cut between members, cut before the end blocks, and
    # a truncated gzip stream
    for body in (
        os.urandom(50_000),
        b"",
        tar[:4000],
        tar[:member],
        tar[: 3 * member],
        gzip.compress(tar)[:1000],
    ):
        response = client.post(
            f"/v1/images/import?reference={unique()}",
            data=body,
            headers={**headers("write"), **TAR},
        )
        problem(response, 400, "INVALID_ARCHIVE")
        assert image_list(docker_client) == before


def test_export_of_a_missing_container_is_404(client, headers):
    problem(
        client.get(f"/v1/containers/{unique()}/export", headers=headers("export")),
        404,
        "CONTAINER_NOT_FOUND",
    )
