"""How `minikube image ls` names an image, so a built tag can be looked up in its answer.

minikube v1.35.0 (kubernetes/minikube, tag v1.35.0): `image ls` (default --format short,
cmd/minikube/cmd/image.go) prints every repo tag on its own line, reverse-sorted
(pkg/minikube/machine/cache_images.go ListImages); with the docker runtime each tag is
"<Repository>:<Tag>" from `docker images` passed through cruntime.AddDockerIO
(pkg/minikube/cruntime/docker.go), which adds docker.io/ (and library/ for a one-part name)
unless the first path part names a registry (contains '.' or ':', or is localhost).
"""

from __future__ import annotations


def minikube_image_ref(ref: str) -> str:
    """'atlas/users:abc' -> 'docker.io/atlas/users:abc', as `minikube image ls` prints it."""
    first, sep, _ = ref.partition("/")
    if sep and (any(c in first for c in ".:") or "localhost" in first):
        return ref
    if not sep:
        return f"docker.io/library/{ref}"
    return f"docker.io/{ref}"


def minikube_image_present(ref: str, listing: list[str]) -> bool:
    """`ref is minikube_image_present(image_ls.stdout_lines)`: the tag is in the cluster."""
    return minikube_image_ref(ref) in {line.strip() for line in listing}


class TestModule:
    def tests(self):
        return {"minikube_image_present": minikube_image_present}
