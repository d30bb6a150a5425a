from mnist_lab.runs import RunStatus
from mnist_lab.views.runs import STATUS_BADGES, status_badge


def test_every_status_has_its_own_badge():
    assert set(STATUS_BADGES) == set(RunStatus)
    assert status_badge(RunStatus.RUNNING) == ":blue-badge[training]"
    assert status_badge(RunStatus.QUEUED, starting=True) == ":blue-badge[starting]"
    assert status_badge("renamed-by-hand") == ":gray-badge[renamed-by-hand]"
