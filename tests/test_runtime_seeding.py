"""The one seeding rule (daskml_lab._runtime.seeding): root entropy, streams, shard seeds, seeded clones."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from daskml_lab._runtime import seeding
from daskml_lab._runtime.seeding import block_rng, root_entropy, seeded_clone, shard_seeds
from daskml_lab.data import _blocks

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_none_draws_fresh_non_negative_entropy():
    first, second = root_entropy(None), root_entropy(None)
    assert isinstance(first, int)
    assert first >= 0
    assert first != second  # 128 bits of fresh entropy each time
    np.random.SeedSequence(first)  # accepted as it is


@pytest.mark.parametrize("seed", [0, 1, 42, 2**32 - 1, 2**32, 2**70])
def test_non_negative_ints_are_the_root_itself(seed):
    assert root_entropy(seed) == seed
    assert root_entropy(np.int64(min(seed, 2**62))) == min(seed, 2**62)
    assert type(root_entropy(np.uint32(7))) is int


@pytest.mark.parametrize("seed", [-1, -(2**40), np.int64(-3)])
def test_negative_ints_are_refused(seed):
    with pytest.raises(ValueError, match=r"random_state must be a non-negative int.*got -"):
        root_entropy(seed)
    with pytest.raises(ValueError, match=r"^seed must be a non-negative int"):
        root_entropy(seed, name="seed")


@pytest.mark.parametrize("value", [True, np.bool_(False), 1.5, "0", [0]])
def test_other_types_are_refused(value):
    with pytest.raises(ValueError, match="cannot be used to seed the random streams"):
        root_entropy(value)


def test_random_state_is_drawn_from_once_and_reproducibly():
    state = np.random.RandomState(0)
    first = root_entropy(state)
    assert first == root_entropy(np.random.RandomState(0))
    assert 0 <= first < 2**64
    assert root_entropy(state) != first  # the RandomState advanced
    high, low = np.random.RandomState(0).randint(0, 2**32, size=2, dtype=np.uint64)
    assert first == int(high) << 32 | int(low)


def test_generator_is_drawn_from_once_and_reproducibly():
    generator = np.random.default_rng(5)
    first = root_entropy(generator)
    assert first == root_entropy(np.random.default_rng(5)) == int(np.random.default_rng(5).integers(0, 2**63))
    assert root_entropy(generator) != first


def test_estimator_seed_is_the_root_when_random_state_is_none():
    seeded = RandomForestClassifier(random_state=11)
    assert root_entropy(None, seeded) == 11
    assert root_entropy(3, seeded) == 3  # the meta-estimator's own seed wins
    unseeded = RandomForestClassifier()
    assert root_entropy(None, unseeded) != root_entropy(None, unseeded)  # fresh entropy


def test_data_layer_reexports_the_one_rule():
    assert _blocks.root_entropy is seeding.root_entropy
    assert _blocks.block_rng is seeding.block_rng


def test_streams_depend_on_the_key_only():
    a = block_rng(7, 1, 0).random(4)
    np.testing.assert_array_equal(a, block_rng(7, 1, 0).random(4))
    assert not np.array_equal(a, block_rng(7, 1, 1).random(4))
    assert not np.array_equal(a, block_rng(8, 1, 0).random(4))


def test_shard_seeds_are_independent_of_the_shard_count_for_sharding():
    few, many = shard_seeds(3, 2), shard_seeds(3, 6)
    assert few.sharding == many.sharding
    assert len(many.shards) == 6
    assert len(set(many.shards)) == 6
    assert all(len(pair) == 2 and all(isinstance(v, int) for v in pair) for pair in many.shards)


def test_seeded_clone_seeds_nested_random_states_and_leaves_the_original():
    base = make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=2))
    first, again, other = seeded_clone(base, 1), seeded_clone(base, 1), seeded_clone(base, 2)
    key = "randomforestclassifier__random_state"
    assert first.get_params()[key] == again.get_params()[key] != other.get_params()[key]
    assert isinstance(first.get_params()[key], int)
    assert base.get_params()[key] is None


def test_same_seed_same_entropy_and_streams_in_another_process():
    script = textwrap.dedent(
        """
        import json
        import numpy as np
        from daskml_lab._runtime.seeding import block_rng, root_entropy, shard_seeds
        print(json.dumps({
            "int": root_entropy(12345),
            "rng": root_entropy(np.random.default_rng(9)),
            "state": root_entropy(np.random.RandomState(9)),
            "stream": block_rng(root_entropy(12345), 2, 5).integers(0, 2**62, size=3).tolist(),
            "shards": [list(s) for s in shard_seeds(12345, 3).shards],
        }))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT), "PYTHONHASHSEED": "17"},
    )
    other = json.loads(result.stdout)
    assert other == {
        "int": 12345,
        "rng": root_entropy(np.random.default_rng(9)),
        "state": root_entropy(np.random.RandomState(9)),
        "stream": block_rng(12345, 2, 5).integers(0, 2**62, size=3).tolist(),
        "shards": [list(s) for s in shard_seeds(12345, 3).shards],
    }
