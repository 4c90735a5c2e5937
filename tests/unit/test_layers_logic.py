"""``app.domain.layers``: chain ids, matching history steps to layers, sharing arithmetic (no
engine)."""

import hashlib

from app.domain.layers import (
    EMPTY_LAYER_DIFF_ID,
    SHARED_LIMIT,
    align_history,
    chain_ids,
    describe_layers,
    holders,
    layer_sizes,
    layer_totals,
    usage_from_df,
    usage_from_layers,
)

D1, D2, D3 = ("sha256:" + x * 64 for x in "123")


def step(size, created_by="sh -c x", comment=""):
    return {"size": size, "created_by": created_by, "comment": comment, "created": None}


def test_chain_ids_follow_the_image_spec():
    expected = "sha256:" + hashlib.sha256(f"{D1} {D2}".encode()).hexdigest()
    assert chain_ids([D1, D2]) == [D1, expected]
    assert chain_ids([]) == []


def test_each_sized_step_makes_one_layer_and_config_steps_none():
    steps = [step(100, ""), step(0, "/bin/sh -c #(nop)  ENV A=1"), step(5), step(0, 'CMD ["x"]')]
    assert align_history([D1, D2], steps) == [0, 2]


def test_zero_size_layer_goes_to_a_command_step_not_a_config_step():
    steps = [step(100, ""), step(0, "/bin/sh -c #(nop)  LABEL a=b"), step(0, "sh -c rm /x")]
    assert align_history([D1, D2], steps) == [0, 2]


def test_empty_tar_layer_matches_a_zero_step():
    steps = [step(100), step(0, "/bin/sh -c #(nop) ADD dir:empty in /")]
    assert align_history([D1, EMPTY_LAYER_DIFF_ID], steps) == [0, 1]


def test_history_that_cannot_describe_the_layers_gives_none():
    assert align_history([D1], [step(1), step(2)]) == [None]
    assert align_history([D1, D2], [step(1)]) == [None, None]
    assert align_history([], [step(1)]) == []


def test_imported_image_single_step_single_layer():
    assert align_history([D1], [step(1982697, "", "Imported from -")]) == [0]


def test_layer_sizes_by_chain_id():
    chains = chain_ids([D1, D2])
    assert layer_sizes([D1, D2], [step(10), step(0, "ENV A=1"), step(3)]) == {
        chains[0]: 10,
        chains[1]: 3,
    }


def test_describe_layers_with_sharing():
    a, b, c = "sha256:" + "a" * 64, "sha256:" + "b" * 64, "sha256:" + "c" * 64
    images = [
        {"id": a, "diff_ids": [D1, D2]},
        {"id": b, "diff_ids": [D1]},
        {"id": c, "diff_ids": [D2]},  # same diff id on another base: not the same layer
    ]
    tags = {a: ["app:1"], b: ["base:1"], c: []}
    layers = describe_layers(
        a, [D1, D2], [step(10, "", "import"), step(3, "sh -c y", "msg")], holders(images), tags
    )
    assert [layer["size"] for layer in layers] == [10, 3]
    assert layers[0]["shared_with"] == [{"id": b, "repo_tags": ["base:1"]}]
    assert layers[1]["shared_with"] == []
    assert layers[1]["comment"] == "msg"
    assert layer_totals(layers) == {"unique_size": 3, "shared_size": 10}
    assert [layer["shared_count"] for layer in layers] == [1, 0]


def test_a_base_held_by_thousands_names_a_bounded_few_tagged_first():
    ids = [f"sha256:{n:064x}" for n in range(2000)]
    images = [{"id": i, "diff_ids": [D1]} for i in ids]
    tags = {i: ([f"app:{n}"] if n % 100 == 7 else []) for n, i in enumerate(ids)}
    layers = describe_layers(ids[0], [D1], [step(10)], holders(images), tags)
    named = layers[0]["shared_with"]
    assert layers[0]["shared_count"] == 1999
    assert len(named) == SHARED_LIMIT
    assert [s["repo_tags"] for s in named[:20]] == [[f"app:{n}"] for n in range(7, 2000, 100)]
    assert all(s["repo_tags"] == [] for s in named[20:])
    assert layer_totals(layers) == {"unique_size": 0, "shared_size": 10}


def test_usage_from_df_counts_each_layer_once():
    images = [
        {"Size": 110, "SharedSize": 100},
        {"Size": 120, "SharedSize": 100},
        {"Size": 100, "SharedSize": 100},
    ]
    totals = usage_from_df(images, layers_size=130)
    assert totals == {"images": 3, "apparent_size": 330, "actual_size": 130, "shared_size": 100}


def test_usage_from_layers_for_a_selection():
    base, x, y = chain_ids([D1]), chain_ids([D1, D2]), chain_ids([D1, D3])
    images = [
        {"id": "a", "size": 110, "diff_ids": [D1, D2], "sizes": {base[0]: 100, x[1]: 10}},
        {"id": "b", "size": 120, "diff_ids": [D1, D3], "sizes": {base[0]: 100, y[1]: 20}},
    ]
    assert usage_from_layers(images) == {
        "images": 2,
        "apparent_size": 230,
        "actual_size": 130,
        "shared_size": 100,
    }
