"""kubelet's image Events, in its words (pure)."""

from __future__ import annotations

from typing import Any

from sigma.agent.podevents import pulled_message, status_events


def test_pulled_says_how_long_and_how_large_as_kubelet() -> None:
    assert pulled_message("busybox:1.36", 1.234, 2155346) == (
        'Successfully pulled image "busybox:1.36" in 1.2s (1.2s including waiting). Image size: 2155346 bytes.')
    assert pulled_message("x", 0.0421, 0) == 'Successfully pulled image "x" in 0.042s (0.042s including waiting).'


def _status(reason: str, message: str = "") -> dict[str, Any]:
    waiting = {"reason": reason, **({"message": message} if message else {})}
    return {"containerStatuses": [{"name": "main", "image": "reg/app:1", "state": {"waiting": waiting}}]}


def test_a_failed_pull_says_the_registrys_words_then_backs_off() -> None:
    pod = {"metadata": {"name": "p", "namespace": "default", "uid": "u"}}
    creating = _status("ContainerCreating")
    failed = _status("ErrImagePull", 'pulling image "reg/app:1": the registry at https://reg answered 401 Unauthorized')
    assert status_events(pod, creating, failed) == [
        ("Warning", "Failed", 'Failed to pull image "reg/app:1": pulling image "reg/app:1": the registry at '
                              "https://reg answered 401 Unauthorized")]
    assert status_events(pod, failed, _status("ImagePullBackOff")) == [
        ("Normal", "BackOff", 'Back-off pulling image "reg/app:1"')]


def test_an_invalid_image_name_is_an_inspect_failed_event_naming_it() -> None:
    pod = {"metadata": {"name": "p", "namespace": "default", "uid": "u"}}
    message = ('Failed to apply default image tag "Bad": couldn\'t parse image reference "Bad": '
               "repository name must be lowercase")
    assert status_events(pod, _status("ContainerCreating"), _status("InvalidImageName", message)) == [
        ("Warning", "InspectFailed", message)]
