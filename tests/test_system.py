from mnist_lab import system


def test_device_info_describes_backend_and_cores():
    info = system.device_info(timeout=120)
    assert system.device_ready()
    assert info.backend in ("tensorflow", "jax", "torch")
    assert info.cpu_cores >= 1
    assert info.keras_version.startswith("3.")
    expected = f"GPU: {', '.join(info.gpus)}" if info.gpus else f"CPU only ({info.cpu_cores} core"
    assert info.description.startswith(expected)
    assert info.as_dict()["description"] == info.description
