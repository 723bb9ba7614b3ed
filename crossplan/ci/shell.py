"""Shell snippets shared by the pipeline generators (pure: Needs -> script text).

Every snippet is POSIX sh that ``bash -n`` accepts; none needs ``pipefail``.
"""

from __future__ import annotations

from crossplan.ci.needs import Login, Needs, shell_quote

__all__ = [
    "HUB_AUTH_KEY",
    "apt_script",
    "binfmt_command",
    "containerd_store_script",
    "docker_config_script",
    "pip_command",
    "rustup_script",
]

HUB_AUTH_KEY = "https://index.docker.io/v1/"
_SUDO = 'SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo'


def pip_command(needs: Needs, python: str = "python") -> str:
    return f"{python} -m pip install --quiet " + " ".join(shell_quote(p) for p in needs.pip)


def apt_script(needs: Needs, *, debian_rust: bool, extra: tuple[str, ...] = ()) -> str | None:
    """Install the Debian packages; with ``debian_rust`` Rust too, with each foreign target's
    std (``libstd-rust-dev:<arch>`` after ``dpkg --add-architecture``)."""
    packages = set(needs.apt) | set(extra)
    arches: list[str] = []
    if debian_rust and needs.rust:
        packages |= {"rustc", "cargo"}
        arches = sorted({arch for arch, _ in needs.rust_std})
        packages |= {f"libstd-rust-dev:{arch}" for arch in arches}
    if not packages:
        return None
    lines = [_SUDO]
    lines += [f"$SUDO dpkg --add-architecture {arch}" for arch in arches]
    lines.append("$SUDO apt-get update -q")
    lines.append("$SUDO apt-get install -y -q --no-install-recommends "
                 + " ".join(sorted(packages)))
    return "\n".join(lines) + "\n"


def rustup_script(needs: Needs, *, with_gnu: bool) -> str | None:
    """``rustup target add`` for musl targets (and the gnu ones where rustup is the Rust)."""
    targets = set(needs.rustup_targets)
    if with_gnu:
        targets |= {triple for _, triple in needs.rust_std}
    if not targets:
        return None
    return "rustup target add " + " ".join(sorted(targets)) + "\n"


def containerd_store_script() -> str:
    """Switch the runner's Docker to the containerd image store (needed to load and run
    multi-platform images), keeping the rest of its daemon.json."""
    return (
        "sudo mkdir -p /etc/docker\n"
        "[ -s /etc/docker/daemon.json ] || echo '{}' | sudo tee /etc/docker/daemon.json "
        ">/dev/null\n"
        "jq '.features[\"containerd-snapshotter\"] = true' /etc/docker/daemon.json "
        "| sudo tee /etc/docker/daemon.json.new >/dev/null\n"
        "sudo mv /etc/docker/daemon.json.new /etc/docker/daemon.json\n"
        "sudo systemctl restart docker\n"
    )


def binfmt_command(needs: Needs) -> str:
    """Register QEMU for the emulated architectures through a privileged container."""
    return "docker run --privileged --rm tonistiigi/binfmt --install " + ",".join(needs.qemu)


def _auth_entry(login: Login) -> str:
    key = HUB_AUTH_KEY if login.host == "docker.io" else login.host
    user, password = login.username_var, login.password_var
    return (
        f'if [ -n "${{{user}:-}}" ]; then\n'
        f'  auths="$auths\\"{key}\\":{{\\"auth\\":\\"$(printf \'%s:%s\' "${user}" "${password}"'
        f" | base64 | tr -d '\\n')\\\"}},\"\n"
        "fi\n"
    )


def docker_config_script(logins: tuple[Login, ...]) -> str:
    """Write ``$DOCKER_CONFIG/config.json`` (what crossplan and docker read) from CI
    variables, without a docker CLI; a registry whose variables are unset (a fork's merge
    request) is skipped: the remote cache then only warns and builds locally."""
    lines = ['mkdir -p "${DOCKER_CONFIG:-$HOME/.docker}"', 'auths=""']
    text = "\n".join(lines) + "\n"
    for login in logins:
        text += _auth_entry(login)
    text += ("printf '{\"auths\":{%s}}\\n' \"${auths%,}\" "
             '> "${DOCKER_CONFIG:-$HOME/.docker}/config.json"\n')
    return text
