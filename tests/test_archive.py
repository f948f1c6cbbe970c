from rsi.archive import Archive


def test_elite_per_cell_and_best():
    a = Archive(["size"], bins=4, islands=1)
    a.add(1, 0, 1.0, (0.0,))
    a.add(2, 0, 2.0, (10.0,))
    assert {e.id for e in a.elites(0)} == {1, 2}
    assert not a.add(3, 0, 0.5, (0.0,))  # worse than the elite of its cell
    assert a.add(4, 0, 3.0, (0.1,))  # better: replaces 1
    assert [e.id for e in a.elites(0)] == [4, 2]
    assert a.best().id == 4


def test_rebinning_keeps_best_per_cell():
    a = Archive(["size"], bins=2, islands=1)
    for cid, (score, x) in enumerate([(1.0, 0.0), (2.0, 1.0), (3.0, 2.0)], start=1):
        a.add(cid, 0, score, (x,))
    a.add(4, 0, 0.0, (100.0,))  # range grows: 1, 2, 3 now share the low cell
    assert [e.id for e in a.elites(0)] == [3, 4]


def test_islands_and_migration_ring():
    a = Archive(["f"], bins=2, islands=3)
    a.add(1, 0, 5.0, (0.0,))
    a.add(2, 1, 1.0, (0.0,))
    moves = a.migrate()
    assert (1, 0, 1) in moves
    assert a.best(1).id == 1
    assert a.best(2).id == 2  # migration is simultaneous: island 1's best before the round moves on


def test_nan_score_never_enters():
    a = Archive(["f"], islands=1)
    assert not a.add(1, 0, float("nan"), (0.0,))
    assert a.best() is None


def test_json_round_trip():
    a = Archive(["f", "g"], bins=3, islands=2)
    a.add(1, 0, 1.0, (0.0, 1.0))
    a.add(2, 1, 2.0, (3.0, 0.0))
    b = Archive.from_json(a.to_json())
    assert b.to_json() == a.to_json()


def test_equal_scores_prefer_shorter_code():
    a = Archive(["f"], bins=1, islands=1)
    a.add(1, 0, 1.0, (0.0,), size=10)
    assert a.add(2, 0, 1.0, (0.0,), size=4)  # same score, shorter: replaces
    assert not a.add(3, 0, 1.0, (0.0,), size=9)
    assert a.best().id == 2


def test_min_improvement_is_a_noise_margin_for_occupied_cells():
    a = Archive(["f"], bins=2, islands=2, min_improvement=0.1)
    assert a.add(1, 0, 1.0, (0.0,))
    assert not a.add(2, 0, 1.05, (0.0,))  # better, but within the margin: noise
    assert not a.add(3, 0, 1.1, (0.0,))  # exactly the margin is not beyond it
    assert a.add(4, 0, 1.2, (0.0,))
    assert a.add(5, 1, 0.0, (0.0,))  # an empty cell takes any valid candidate
    assert a.migrate() == [(4, 0, 1)]  # the migrant beats island 1's elite by more than the margin
    assert not a.add(6, 1, 1.25, (0.0,))
    back = Archive.from_json(a.to_json())
    assert back.min_improvement == 0.1 and not back.add(7, 0, 1.29, (0.0,)) and back.copy().min_improvement == 0.1


def test_min_improvement_must_be_a_finite_non_negative_number():
    import pytest

    for bad in (-0.1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="min_improvement"):
            Archive(["f"], min_improvement=bad)
