"""Storage resolution and the one-line errors for bad storage URLs, worker counts and mismatched studies."""

from __future__ import annotations

import os
import signal
import socket
from dataclasses import replace
from pathlib import Path

import optuna
import pytest
import sqlalchemy.orm

from autopatch.errors import AutopatchError
from autopatch.search import FIDELITIES, StudySettings, load_existing_study, open_study
from autopatch.search.storage import (
    HeartbeatJournalStorage,
    check_driver,
    check_storage_for_workers,
    default_storage_url,
    existing_default_storage_url,
    mask_password,
    open_storage,
    url_scheme,
    with_driver,
)


def one_line(error: pytest.ExceptionInfo) -> str:
    text = str(error.value)
    assert "\n" not in text
    return text


def test_default_url_is_sqlite_for_one_worker_and_journal_for_several(tmp_path):
    assert default_storage_url(tmp_path, "s") == f"sqlite:///{tmp_path / 's.db'}"
    assert default_storage_url(tmp_path, "s", workers=4) == f"journal:///{tmp_path / 's.journal'}"
    assert isinstance(open_storage(default_storage_url(tmp_path, "s", workers=4)), HeartbeatJournalStorage)


def test_existing_default_url_finds_either_file_and_errors_without_one(tmp_path):
    with pytest.raises(AutopatchError) as error:
        existing_default_storage_url(tmp_path, "s")
    assert "autopatch search" in one_line(error)
    (tmp_path / "s.journal").write_text("")
    assert existing_default_storage_url(tmp_path, "s") == f"journal:///{tmp_path / 's.journal'}"


@pytest.mark.parametrize(
    ("url", "scheme"),
    [
        ("sqlite:///runs/a.db", "sqlite"),
        ("postgresql://u:p@h:5432/db", "postgresql"),
        ("postgresql+psycopg2://u@h/db", "postgresql"),
        ("mysql+pymysql://u@h/db", "mysql"),
        ("journal:///runs/a.journal", "journal"),
    ],
)
def test_known_schemes(url, scheme):
    assert url_scheme(url) == scheme


@pytest.mark.parametrize("url", ["redis://localhost/0", "runs/a.db", "http://example.org", "postgres-ish:/x"])
def test_unknown_schemes_are_one_line_errors(url):
    with pytest.raises(AutopatchError) as error:
        url_scheme(url)
    assert "sqlite:///" in one_line(error)


def test_password_is_masked_in_messages():
    assert mask_password("postgresql://alice:s3cret@db:5432/x") == "postgresql://alice:***@db:5432/x"
    assert mask_password("postgresql://alice@db/x") == "postgresql://alice@db/x"
    assert mask_password("sqlite:///a.db") == "sqlite:///a.db"


def test_parallel_sqlite_is_refused_but_one_worker_is_fine():
    check_storage_for_workers("sqlite:///a.db", 1)
    check_storage_for_workers("journal:///a.journal", 4)
    check_storage_for_workers("postgresql://u@h/db", 4)
    with pytest.raises(AutopatchError) as error:
        check_storage_for_workers("sqlite:///a.db", 2)
    assert "postgresql://" in one_line(error)
    with pytest.raises(AutopatchError):
        check_storage_for_workers("sqlite:///a.db", 0)


def test_missing_folder_and_missing_file_are_errors_and_create_nothing(tmp_path):
    with pytest.raises(AutopatchError) as error:
        open_storage(f"sqlite:///{tmp_path / 'nope' / 'a.db'}")
    assert "does not exist" in one_line(error)
    with pytest.raises(AutopatchError):
        open_storage(f"sqlite:///{tmp_path / 'a.db'}", create=False)
    with pytest.raises(AutopatchError):
        open_storage("sqlite:///:memory:")
    assert list(tmp_path.iterdir()) == []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_postgres_is_a_one_line_error_with_the_password_masked():
    with pytest.raises(AutopatchError) as error:
        open_storage(f"postgresql://alice:s3cret@127.0.0.1:{free_port()}/db")
    text = one_line(error)
    assert "cannot open storage" in text and "s3cret" not in text and "alice:***" in text


def settings(tmp_path: Path, **changes) -> StudySettings:
    return StudySettings(data_root=str(tmp_path), category="toy", **changes)


@pytest.mark.parametrize(("key", "value"), [
    ("space", "ofa"), ("k", 2), ("image_size", 128), ("image_size", "224x560"), ("resize", "keep-aspect"),
    ("oracle", True), ("bank_fraction", 0.1), ("query_stride", 2), ("projection", 64), ("synthetic", 4),
    ("synthetic_kind", "nsa"),
])  # fmt: skip
def test_resuming_with_other_settings_is_refused_and_writes_nothing(tmp_path, key, value):
    storage = open_storage(f"sqlite:///{tmp_path / 's.db'}")
    study = open_study(settings(tmp_path), "s", storage)
    study.add_trial(optuna.trial.create_trial(values=[0.1, 0.5]))
    with pytest.raises(AutopatchError) as error:
        open_study(settings(tmp_path, **{key: value}), "s", storage)
    assert f"{key}=" in one_line(error)
    reloaded = optuna.load_study(study_name="s", storage=storage)
    assert reloaded.user_attrs == {**settings(tmp_path).attrs(), "settings_recorded": True}
    assert len(reloaded.trials) == 1


def test_pareto_and_export_need_an_existing_study(tmp_path):
    storage = open_storage(f"sqlite:///{tmp_path / 's.db'}")
    open_study(settings(tmp_path), "real", storage)
    with pytest.raises(AutopatchError) as error:
        load_existing_study("typo", storage)
    assert "real" in one_line(error)
    assert load_existing_study("real", storage).study_name == "real"


def test_a_file_that_is_not_a_study_is_a_one_line_error(tmp_path):
    path = tmp_path / "junk.db"
    path.write_bytes(b"\x00not a study\xff" * 50)
    with pytest.raises(AutopatchError) as error:
        open_storage(f"sqlite:///{path}", create=False)
    assert "cannot open storage" in one_line(error)


def test_the_readme_postgres_url_uses_the_installed_driver_and_a_missing_driver_names_its_package():
    assert with_driver("postgresql://u:p@h:5432/db") == "postgresql+psycopg2://u:p@h:5432/db"
    assert with_driver("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"  # an explicit driver stays
    assert with_driver("sqlite:///a.db") == "sqlite:///a.db"
    check_driver("postgresql+psycopg2://u@h/db")  # installed: no error
    with pytest.raises(AutopatchError) as error:
        open_storage("mysql://alice:s3cret@127.0.0.1/db")  # SQLAlchemy's default MySQL driver is not installed
    text = one_line(error)
    assert "pip install mysqlclient" in text and "s3cret" not in text


def _open_at_once(url: str, root: str, barrier, results) -> None:
    barrier.wait()
    try:
        study = open_study(StudySettings(data_root=root, category="toy"), "race", open_storage(url))
        results.put(("ok", study.user_attrs.get("category")))
    except Exception as error:  # the test reports what each process met
        results.put((type(error).__name__, str(error)))


@pytest.mark.slow  # four fresh interpreters
@pytest.mark.parametrize("scheme", ["sqlite", "journal"])
def test_processes_creating_one_study_at_the_same_moment_all_open_it(tmp_path, scheme):
    import multiprocessing

    url = f"sqlite:///{tmp_path / 's.db'}" if scheme == "sqlite" else f"journal:///{tmp_path / 's.journal'}"
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(4), context.Queue()
    processes = [context.Process(target=_open_at_once, args=(url, str(tmp_path), barrier, results)) for _ in range(4)]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    assert outcomes == [("ok", "toy")] * 4
    assert [s.study_name for s in optuna.get_all_study_summaries(open_storage(url), include_best_trial=False)] == [
        "race"
    ]


def test_a_study_whose_creator_stopped_before_writing_its_settings_is_a_one_line_error(tmp_path):
    storage = open_storage(f"sqlite:///{tmp_path / 's.db'}")
    optuna.create_study(storage=storage, study_name="half", directions=["minimize", "maximize"])
    with pytest.raises(AutopatchError) as error:
        open_study(settings(tmp_path), "half", storage, wait_s=0.5)
    assert "never fully written" in one_line(error) and "--study" in one_line(error)


def old_study(tmp_path: Path, settings: StudySettings, unknown: tuple[str, ...]) -> optuna.storages.BaseStorage:
    """A storage holding study 'old' as an older autopatch recorded `settings`: without the `unknown` ones."""
    storage = open_storage(f"sqlite:///{tmp_path / 'old.db'}")
    old = optuna.create_study(storage=storage, study_name="old", directions=["minimize", "maximize"])
    for key, value in settings.attrs().items():
        if key not in unknown:
            old.set_user_attr(key, value)
    old.set_user_attr("settings_recorded", True)
    return storage


def test_a_study_made_before_objectives_existed_resumes_as_rwap(tmp_path):
    settings = StudySettings(data_root=str(tmp_path), category="toy")
    storage = old_study(tmp_path, settings, ("objective", "folders"))
    assert open_study(settings, "old", storage).study_name == "old"
    with pytest.raises(AutopatchError, match="exists with objective='rwap', not 'image-ap'"):
        open_study(replace(settings, objective="image-ap"), "old", storage)


def test_a_study_made_before_query_strides_and_projections_resumes_at_full_fidelity_only(tmp_path):
    settings = StudySettings(data_root=str(tmp_path), category="toy", bank_fraction=0.1)
    storage = old_study(tmp_path, settings, ("query_stride", "projection"))
    assert open_study(settings, "old", storage).study_name == "old"
    fast = StudySettings.with_fidelity(FIDELITIES["fast"], data_root=str(tmp_path), category="toy")
    with pytest.raises(AutopatchError) as error:
        open_study(fast, "old", storage)
    stride = FIDELITIES["fast"].query_stride
    assert one_line(error) == (
        f"study 'old' exists with query_stride=1, not {stride}; pass the same --fidelity to resume it, "
        "or a new --study name"
    )


@pytest.mark.parametrize(("knobs", "message"), [
    ({"query_stride": 0}, "--query-stride 0 must be a whole number of at least 1"),
    ({"projection": 0}, "--projection 0 must be a whole number of at least 1"),
    ({"bank_fraction": 1.5}, "--bank-fraction"),
])  # fmt: skip
def test_a_bad_fidelity_is_one_line_before_anything_is_written(tmp_path, knobs, message):
    with pytest.raises(AutopatchError) as error:
        settings(tmp_path, **knobs)
    assert message in one_line(error)
    assert not list(tmp_path.iterdir())


def test_ctrl_c_inside_a_journal_write_acts_after_the_write_and_leaves_no_lock(tmp_path, monkeypatch):
    path = tmp_path / "s.journal"
    storage = open_storage(f"journal:///{path}")
    study_id = storage.create_new_study([optuna.study.StudyDirection.MINIMIZE], "s")
    rename = os.rename

    def ctrl_c_then_rename(*args):  # Optuna's lock releases by rename + unlink: Ctrl-C lands between them
        signal.raise_signal(signal.SIGINT)
        rename(*args)

    monkeypatch.setattr(os, "rename", ctrl_c_then_rename)
    with pytest.raises(KeyboardInterrupt):
        storage.set_study_user_attr(study_id, "written", True)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.journal"]  # no lock or rename file left behind
    assert open_storage(f"journal:///{path}").get_study_user_attrs(study_id) == {"written": True}


def test_ctrl_c_inside_a_database_call_acts_after_the_call_and_keeps_its_write(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 's.db'}"
    storage = open_storage(url)
    study_id = storage.create_new_study([optuna.study.StudyDirection.MINIMIZE], "s")
    commit = sqlalchemy.orm.Session.commit

    def ctrl_c_then_commit(session):  # Ctrl-C lands inside the call, before its transaction commits
        signal.raise_signal(signal.SIGINT)
        return commit(session)

    monkeypatch.setattr(sqlalchemy.orm.Session, "commit", ctrl_c_then_commit)
    with pytest.raises(KeyboardInterrupt):
        storage.set_study_user_attr(study_id, "written", True)
    monkeypatch.undo()
    other = open_storage(url)  # another connection writes: no lock was left behind
    other.set_study_user_attr(study_id, "next", 1)
    assert other.get_study_user_attrs(study_id) == {"written": True, "next": 1}
