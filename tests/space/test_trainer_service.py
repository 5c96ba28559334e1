"""Admin gating, thresholds and hot-swap of the app's trainer service (no round is run here)."""
import pytest

from annotations.store import AnnotationStore
from cvrkd.checkpoint import untrained
from cvrkd.train.registry import ModelRegistry
from space.services.admin_auth import NotAuthorised
from space.services.trainer_service import TrainerService


@pytest.fixture
def service(scorer, tmp_path):
    store = AnnotationStore(tmp_path / "annotations")
    return TrainerService(store_dir=tmp_path / "annotations", registry_dir=tmp_path / "registry",
                          images_dir=tmp_path / "pool", model_dir=scorer.model_dir,
                          cache_dir=tmp_path / "cache", count_judgements=store.count,
                          swap_student=scorer.swap_student, served_version=lambda: scorer.model_version,
                          min_new_judgements=5, admin_token="s3cret")


def test_only_the_admin_token_triggers_or_rolls_back(service):
    for token in ("", "wrong", "s3cre"):
        with pytest.raises(NotAuthorised):
            service.request_round(token)
        with pytest.raises(NotAuthorised):
            service.rollback(token)


def test_no_token_configured_means_nobody_is_admin(scorer, tmp_path):
    store = AnnotationStore(tmp_path / "a")
    locked = TrainerService(store_dir=tmp_path / "a", registry_dir=tmp_path / "r", images_dir=tmp_path,
                            model_dir=scorer.model_dir, cache_dir=tmp_path, count_judgements=store.count,
                            swap_student=scorer.swap_student, served_version=lambda: scorer.model_version,
                            admin_token="")
    with pytest.raises(NotAuthorised):
        locked.request_round("")


def test_too_few_new_judgements_start_nothing(service):
    assert service.on_new_judgement() is False
    assert service.state().running is False


def test_promotion_in_the_registry_is_served_and_rollback_restores(service, scorer):
    shipped = scorer.model_version
    registry = ModelRegistry(service.registry.root)
    version = registry.add(*untrained("student", seed=5))
    registry.promote(version)
    service.sync_served_model()
    assert scorer.model_version == version
    assert service.rollback("s3cret") == "shipped model"
    assert scorer.model_version == shipped


def test_a_failed_round_shows_its_reason_on_the_model_tab(scorer, tmp_path):
    """A real trainer process that fails (no student in the model folder): its error reaches the Model tab."""
    from space.ui.model_tab import trainer_markdown

    store = AnnotationStore(tmp_path / "annotations")
    store.close()
    service = TrainerService(store_dir=tmp_path / "annotations", registry_dir=tmp_path / "registry",
                             images_dir=tmp_path / "pool", model_dir=tmp_path / "no-model",
                             cache_dir=tmp_path / "cache", count_judgements=lambda: 0,
                             swap_student=scorer.swap_student, served_version=lambda: scorer.model_version,
                             admin_token="s3cret", log_file=tmp_path / "trainer.log")
    assert service.request_round("s3cret") is True
    service.wait(timeout=300)
    state = service.state()
    assert state.running is False and state.last_exit_code != 0
    assert "No module named" not in service.failure()  # the trainer found the cvrkd package
    assert "no-model" in service.failure()  # the real reason: the missing student checkpoint
    shown = trainer_markdown(service)
    assert f"last round failed (exit {state.last_exit_code}): " in shown
    assert service.failure().splitlines()[-1] in shown


def test_an_app_without_a_trainer_refuses_its_admin_actions_with_the_reason():
    import gradio as gr

    from space.services.container import NoTrainer, NoTrainerAttached
    from space.ui import admin

    with pytest.raises(NoTrainerAttached, match="No re-distillation trainer"):
        NoTrainer().request_round("any token")
    for action in (lambda: admin.request_round(NoTrainer(), "s3cret"), lambda: admin.rollback(NoTrainer(), "s3cret", "")):
        with pytest.raises(gr.Error, match="No re-distillation trainer"):
            action()
