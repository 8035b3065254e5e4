"""Config loading and `gateway config check`: the shipped config loads, and every
kind of mistake an admin makes is reported with its file, line and key, all at once."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from conftest import edit, line_of, set_privacy
from typer.testing import CliRunner

from gateway import ConfigError, ConfigIssue
from gateway._config import load_config
from gateway._registry import installed_adapters
from gateway.cli import app

ENV = {"LAPOR_HENDI_API_KEY": "x", "SP4N_AUTHORIZATION": "y", "SP4N_TOKEN": "z"}
LOCAL = "adapters/lapor-hendi-semarang.yaml"
HUB = "adapters/sp4n.yaml"


def issues(config_dir: Path, environ: dict[str, str] = ENV) -> list[ConfigIssue]:
    with pytest.raises(ConfigError) as caught:
        load_config(config_dir / "gateway.yaml", environ=environ)
    return caught.value.issues


def issue_for(found: list[ConfigIssue], key: str) -> ConfigIssue:
    matching = [i for i in found if i.key == key]
    assert len(matching) == 1, f"expected one issue for {key!r}, got {found}"
    return matching[0]


# -- the shipped config ----------------------------------------------------------------------


def test_shipped_config_loads(repo_config_dir: Path):
    config = load_config(repo_config_dir / "gateway.yaml", environ=ENV)

    assert sorted(config.instances) == ["lapor-hendi-semarang", "open311-makassar", "sp4n", "suara-arek-malang"]
    assert [i.name for i in config.local_apps()] == ["lapor-hendi-semarang"]  # the declarative ones are disabled
    assert [i.name for i in config.hubs()] == ["sp4n"]
    assert config.instances["lapor-hendi-semarang"].spec.route.hub == "sp4n"
    assert config.instances["lapor-hendi-semarang"].secrets == {"api_key": "x"}
    assert config.instances["sp4n"].secrets == {"authorization": "y", "token": "z"}


def test_secrets_are_not_shown_in_the_repr_of_an_instance(repo_config_dir: Path):
    environ = {**ENV, "SP4N_TOKEN": "0f1e2d3c-guid-value"}
    config = load_config(repo_config_dir / "gateway.yaml", environ=environ)
    hub = config.instances["sp4n"]

    assert "0f1e2d3c-guid-value" not in repr(hub)
    assert "0f1e2d3c-guid-value" not in repr(hub.context())


# -- one mistake at a time -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("file", "old", "new", "key"),
    [
        (LOCAL, "timezone: Asia/Jakarta", "timezon: Asia/Jakarta", "timezon"),
        (LOCAL, "  page_size: 50", "  page_sise: 50", "settings.page_sise"),
        (HUB, "timeout_seconds: 15", "timeout_second: 15", "timeout_second"),
        ("gateway.yaml", "  max_attempts: 8", "  max_attemps: 8", "delivery.max_attemps"),
    ],
)
def test_unknown_key_is_reported_with_file_line_and_key(repo_config_dir: Path, file: str, old: str, new: str, key: str):
    path = repo_config_dir / file
    text = edit(path, old, new)

    issue = issue_for(issues(repo_config_dir), key)

    assert issue.file == str(path)
    assert issue.line == line_of(text, new.strip())
    assert "unknown key" in issue.message


def test_wrong_type_is_reported(repo_config_dir: Path):
    path = repo_config_dir / HUB
    text = edit(path, "timeout_seconds: 15", "timeout_seconds: abc")

    issue = issue_for(issues(repo_config_dir), "timeout_seconds")

    assert issue.file == str(path)
    assert issue.line == line_of(text, "timeout_seconds: abc")
    assert "number" in issue.message


def test_wrong_value_in_gateway_yaml_is_reported(repo_config_dir: Path):
    path = repo_config_dir / "gateway.yaml"
    text = edit(path, "level: info", "level: verbose")

    issue = issue_for(issues(repo_config_dir), "log.level")

    assert issue.file == str(path)
    assert issue.line == line_of(text, "level: verbose")
    assert "'info'" in issue.message


def test_unknown_canonical_status_is_reported(repo_config_dir: Path):
    path = repo_config_dir / LOCAL
    text = edit(path, "  selesai: done", "  selesai: finished")

    issue = issue_for(issues(repo_config_dir), "statuses.selesai")

    assert issue.file == str(path)
    assert issue.line == line_of(text, "selesai: finished")
    assert "'done'" in issue.message and "'in_progress'" in issue.message  # says what is allowed


def test_missing_status_in_status_writes_is_reported(repo_config_dir: Path):
    path = repo_config_dir / LOCAL
    text = edit(path, "  archived: ditolak\n", "")

    issue = issue_for(issues(repo_config_dir), "status_writes")

    assert issue.file == str(path)
    assert issue.line == line_of(text, "status_writes:")
    assert "archived" in issue.message
    assert "done" not in issue.message.split(":", 1)[1]  # only what is missing is listed


def test_literal_secret_is_refused_without_repeating_it(repo_config_dir: Path):
    literal = "7f3c9a1e-5b2d-4c8e-9f10-literal"
    path = repo_config_dir / HUB
    edit(path, "token: ${SP4N_TOKEN}", f"token: {literal}")

    with pytest.raises(ConfigError) as caught:
        load_config(repo_config_dir / "gateway.yaml", environ=ENV)

    found = [i for i in caught.value.issues if i.file == str(path)]
    assert len(found) == 1
    assert found[0].key.startswith("secrets")
    assert "'token'" in found[0].message and "environment variable" in found[0].message
    assert literal not in str(caught.value)
    assert all(literal not in str(i) and literal not in repr(i) for i in caught.value.issues)


def test_literal_secret_is_reported_at_its_own_line_and_key(repo_config_dir: Path):
    path = repo_config_dir / HUB
    text = edit(path, "token: ${SP4N_TOKEN}", "token: not-a-reference")

    issue = issue_for(issues(repo_config_dir), "secrets.token")

    assert issue.file == str(path)
    assert issue.line == line_of(text, "token: not-a-reference")


def test_missing_environment_variable_is_reported(repo_config_dir: Path):
    path = repo_config_dir / HUB
    text = path.read_text()
    environ = {k: v for k, v in ENV.items() if k != "SP4N_TOKEN"}

    found = issues(repo_config_dir, environ)

    assert found == [issue_for(found, "secrets.token")]
    assert found[0].file == str(path)
    assert found[0].line == line_of(text, "${SP4N_TOKEN}")
    assert "SP4N_TOKEN" in found[0].message
    # `gateway status` loads without secrets.
    load_config(repo_config_dir / "gateway.yaml", environ=environ, check_secrets=False)


@pytest.mark.parametrize("tail", ["\r", "\n", "\x00", "\t"])
def test_a_secret_holding_a_control_character_is_reported_without_its_value(repo_config_dir: Path, tail: str):
    """Found by the hub review: a token with a carriage return (an env file written on Windows)
    passed config check, and every request was then refused as not valid HTTP after start-up."""
    path = repo_config_dir / HUB
    text = path.read_text()
    value = "tok-Kp9x-" + "a" * 20
    environ = {**ENV, "SP4N_TOKEN": value + tail}

    found = issues(repo_config_dir, environ)

    assert found == [issue_for(found, "secrets.token")]
    assert found[0].file == str(path) and found[0].line == line_of(text, "${SP4N_TOKEN}")
    assert "SP4N_TOKEN holds a control character" in found[0].message
    assert value not in str(found[0]) and value not in repr(found[0])
    # A space inside a secret (a password may hold one) is not refused.
    config = load_config(repo_config_dir / "gateway.yaml", environ={**ENV, "SP4N_TOKEN": "two words"})
    assert config.instances["sp4n"].secrets["token"] == "two words"


def test_a_disabled_instance_needs_no_secrets(repo_config_dir: Path):
    path = repo_config_dir / LOCAL
    text = path.read_text()
    assert "enabled:" not in text
    # Neither the environment variable nor even the secrets block.
    path.write_text("enabled: false\n" + re.sub(r"(?m)^secrets:\n(?:  .*\n)+", "", text))
    environ = {k: v for k, v in ENV.items() if k != "LAPOR_HENDI_API_KEY"}
    config = load_config(repo_config_dir / "gateway.yaml", environ=environ)
    assert not config.instances["lapor-hendi-semarang"].spec.enabled
    assert config.local_apps() == []
    # Enabled again, the same files are refused for the missing secret, with file and key.
    path.write_text(path.read_text().replace("enabled: false\n", ""))
    found = issues(repo_config_dir, environ)
    assert [i.key for i in found] == ["secrets.api_key"] and found[0].file == str(path)


def test_a_disabled_instance_still_refuses_a_literal_secret(repo_config_dir: Path):
    path = repo_config_dir / HUB
    edit(path, "${SP4N_TOKEN}", "plain-token-value")
    path.write_text("enabled: false\n" + path.read_text())
    found = issues(repo_config_dir)
    assert [i.key for i in found] == ["secrets.token"] and "plain-token-value" not in found[0].message


def test_unknown_adapter_is_reported_with_the_installed_ones(repo_config_dir: Path):
    path = repo_config_dir / LOCAL
    text = edit(path, "adapter: lapor_hendi", "adapter: lapor_hendy")

    issue = issue_for(issues(repo_config_dir), "adapter")

    assert issue.file == str(path)
    assert issue.line == line_of(text, "adapter: lapor_hendy")
    assert "'lapor_hendy'" in issue.message
    installed = [a.name for a in installed_adapters()]
    assert {"lapor_hendi", "sp4n"} <= set(installed)
    assert all(name in issue.message for name in installed)


def test_route_to_a_hub_that_does_not_exist_is_reported(repo_config_dir: Path):
    path = repo_config_dir / LOCAL
    text = edit(path, "  hub: sp4n ", "  hub: sp4x ")

    found = issues(repo_config_dir)

    issue = issue_for(found, "route.hub")
    assert len(found) == 1
    assert issue.file == str(path)
    assert issue.line == line_of(text, "hub: sp4x")
    assert "'sp4x'" in issue.message and "sp4n" in issue.message  # names the hubs there are


def test_route_to_a_local_app_is_reported(repo_config_dir: Path):
    path = repo_config_dir / LOCAL
    text = edit(path, "  hub: sp4n ", "  hub: lapor-hendi-semarang ")

    issue = issue_for(issues(repo_config_dir), "route.hub")

    assert issue.line == line_of(text, "hub: lapor-hendi-semarang")
    assert "not a hub" in issue.message


def test_category_mapped_to_a_slug_the_hub_lacks_is_reported(repo_config_dir: Path):
    path = repo_config_dir / LOCAL
    text = edit(path, "  Sampah: sampah", "  Sampah: persampahan")

    found = issues(repo_config_dir)

    issue = issue_for(found, "categories.Sampah")
    assert len(found) == 1
    assert issue.file == str(path)
    assert issue.line == line_of(text, "Sampah: persampahan")
    assert "'persampahan'" in issue.message and "sp4n" in issue.message


def test_invalid_yaml_is_reported_with_its_line(repo_config_dir: Path):
    path = repo_config_dir / LOCAL
    text = edit(path, "base_url: http://127.0.0.1:8701\n", "base_url: http://127.0.0.1:8701\n  port: 8701\n")

    found = issues(repo_config_dir)

    assert len(found) == 1
    assert found[0].file == str(path)
    assert found[0].line == line_of(text, "port: 8701")
    assert "invalid YAML" in found[0].message


def test_a_duplicate_key_is_reported_by_its_name_never_its_values(repo_config_dir: Path):
    """Found by review-fuzz: ruamel's message quotes both values of a duplicate key, so a
    secret written twice (or a base_url with a password) was printed by config check."""
    path = repo_config_dir / LOCAL
    text = edit(
        path, "  api_key: ${LAPOR_HENDI_API_KEY}\n", "  api_key: hunter2-Kp9x\n  api_key: ${LAPOR_HENDI_API_KEY}\n"
    )

    found = issues(repo_config_dir)

    assert len(found) == 1
    assert found[0].file == str(path)
    assert found[0].line == line_of(text, "api_key: ${LAPOR_HENDI_API_KEY}")
    assert 'duplicate key "api_key"' in found[0].message
    assert "hunter2" not in found[0].message and "LAPOR_HENDI_API_KEY" not in found[0].message


def test_aliases_that_expand_to_billions_of_values_are_refused(repo_config_dir: Path):
    """Found by review-fuzz: ten lines of nested aliases (a "billion laughs", 9**10 values) kept
    config check expanding them until it was killed. Six lines (600,000 values) show it here."""
    path = repo_config_dir / LOCAL
    bomb = "x0: &a0 [v, v, v, v, v, v, v, v, v]\n" + "".join(
        f"x{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 6)
    )
    path.write_text(path.read_text() + bomb)

    found = issues(repo_config_dir)

    assert len(found) == 1
    assert found[0].file == str(path)
    assert "more than 100000 values once its aliases (*name) are repeated" in found[0].message


def test_a_file_too_large_for_a_configuration_is_refused_before_it_is_parsed(repo_config_dir: Path):
    """Found by review-fuzz: a 3 MB file of keys kept config check parsing for minutes (ruamel
    reads about 3,000 lines a second), then listed each key as unknown."""
    path = repo_config_dir / LOCAL
    path.write_text(path.read_text() + "".join(f"k{i}: v\n" for i in range(40_000)))

    found = issues(repo_config_dir)

    assert len(found) == 1
    assert found[0].file == str(path)
    assert "more than a configuration file may hold" in found[0].message


@pytest.mark.parametrize(
    "url", ["http://admin:hunter2-Kp9x@127.0.0.1:8701", "https://hunter2-Kp9x@lapor.example.go.id/api"]
)
def test_a_password_in_base_url_is_refused_without_repeating_it(repo_config_dir: Path, url: str):
    """Found by review-fuzz: secrets: refuses a literal secret, but one written into base_url
    (user:password@host) passed config check."""
    path = repo_config_dir / LOCAL
    text = edit(path, "base_url: http://127.0.0.1:8701", f"base_url: {url}")

    issue = issue_for(issues(repo_config_dir), "base_url")

    assert issue.file == str(path) and issue.line == line_of(text, "base_url:")
    assert "secrets:" in issue.message and "hunter2" not in issue.message


def test_an_at_sign_after_the_host_is_no_password(repo_config_dir: Path):
    edit(repo_config_dir / LOCAL, "base_url: http://127.0.0.1:8701", "base_url: http://127.0.0.1:8701/api/@v1")

    config = load_config(repo_config_dir / "gateway.yaml", environ=ENV)
    assert config.instances["lapor-hendi-semarang"].spec.base_url == "http://127.0.0.1:8701/api/@v1"


def test_an_attachment_path_not_below_base_url_is_reported(repo_config_dir: Path):
    """Found by review-fuzz: attachment_path '@evil.example/{id}', appended to base_url, sent the
    hub's token to evil.example."""
    path = repo_config_dir / "adapters/sp4n.yaml"
    text = edit(path, "settings:\n", "settings:\n  attachment_path: '@evil.example/{id}'\n")

    issue = issue_for(issues(repo_config_dir), "settings.attachment_path")

    assert issue.file == str(path) and issue.line == line_of(text, "attachment_path:")


@pytest.mark.parametrize(("char", "code"), [("\x00", "U+0000"), ("\x1b", "U+001B")])
def test_a_character_yaml_does_not_allow_is_reported_with_its_line(repo_config_dir: Path, char: str, code: str):
    """Found by review-fuzz: a NUL or an escape code in a file said 'invalid YAML (ReaderError)',
    without a line."""
    path = repo_config_dir / LOCAL
    text = edit(path, "author_name: LAPOR!-SP4N", f"author_name: LAPOR{char}SP4N")

    found = issues(repo_config_dir)

    assert len(found) == 1
    assert found[0].file == str(path) and found[0].line == line_of(text, "author_name:")
    assert f"a character YAML does not allow ({code})" in found[0].message


def test_bad_timezone_is_reported(repo_config_dir: Path):
    path = repo_config_dir / LOCAL
    text = edit(path, "timezone: Asia/Jakarta", "timezone: Asia/Semarang")

    issue = issue_for(issues(repo_config_dir), "timezone")

    assert issue.file == str(path)
    assert issue.line == line_of(text, "timezone: Asia/Semarang")
    assert "Asia/Jakarta" in issue.message  # suggests a valid name


def test_duplicate_instance_name_across_files_is_reported(repo_config_dir: Path):
    first = repo_config_dir / HUB
    second = repo_config_dir / "adapters" / "zz-sp4n-copy.yaml"
    shutil.copy(first, second)
    text = second.read_text()

    found = issues(repo_config_dir)

    issue = issue_for(found, "name")
    assert len(found) == 1
    assert issue.file == str(second)
    assert issue.line == line_of(text, "name: sp4n")
    assert "'sp4n'" in issue.message and str(first) in issue.message


def test_an_invalid_hub_file_does_not_cause_misleading_route_issues(repo_config_dir: Path):
    edit(repo_config_dir / HUB, "timeout_seconds: 15", "timeout_seconds: abc")

    found = issues(repo_config_dir)

    assert [i.key for i in found] == ["timeout_seconds"]


def test_several_problems_are_all_reported_at_once(repo_config_dir: Path):
    local = repo_config_dir / LOCAL
    edit(local, "timezone: Asia/Jakarta", "timezon: Asia/Jakarta")
    local_text = edit(local, "  selesai: done", "  selesai: finished")
    other = repo_config_dir / "adapters" / "kota-lain.yaml"
    other.write_text(
        local_text.replace("name: lapor-hendi-semarang", "name: kota-lain")
        .replace("timezon: Asia/Jakarta", "timezone: Mars/Olympus")
        .replace("  selesai: finished", "  selesai: done")
    )
    hub_text = (repo_config_dir / HUB).read_text()
    environ = {k: v for k, v in ENV.items() if k != "SP4N_TOKEN"}

    found = issues(repo_config_dir, environ)

    assert {(Path(i.file).name, i.line, i.key) for i in found} == {
        ("lapor-hendi-semarang.yaml", line_of(local_text, "timezon:"), "timezon"),
        ("lapor-hendi-semarang.yaml", line_of(local_text, "selesai: finished"), "statuses.selesai"),
        ("kota-lain.yaml", line_of(other.read_text(), "timezone: Mars/Olympus"), "timezone"),
        ("sp4n.yaml", line_of(hub_text, "${SP4N_TOKEN}"), "secrets.token"),
    }
    assert len(found) == 4


# -- gateway config check ----------------------------------------------------------------------


def test_cli_config_check_reports_file_and_line_and_exits_1(repo_config_dir: Path):
    path = repo_config_dir / LOCAL
    text = edit(path, "timezone: Asia/Jakarta", "timezone: Asia/Semarang")
    line = line_of(text, "Asia/Semarang")

    result = CliRunner().invoke(app, ["--config", str(repo_config_dir / "gateway.yaml"), "config", "check"], env=ENV)

    assert result.exit_code == 1, result.output
    assert f"{path}:{line}: timezone:" in result.output
    assert "1 problem" in result.output


def test_cli_config_check_reports_a_missing_variable(repo_config_dir: Path):
    path = repo_config_dir / HUB
    line = line_of(path.read_text(), "${SP4N_TOKEN}")

    result = CliRunner().invoke(
        app, ["--config", str(repo_config_dir / "gateway.yaml"), "config", "check"], env={**ENV, "SP4N_TOKEN": None}
    )

    assert result.exit_code == 1, result.output
    assert f"{path}:{line}: secrets.token:" in result.output


def test_cli_config_check_ok_on_the_shipped_config(repo_config_dir: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(repo_config_dir.parent)

    result = CliRunner().invoke(app, ["--config", "config/gateway.yaml", "config", "check"], env=ENV)

    assert result.exit_code == 0, result.output
    assert result.output.startswith("ok")
    assert "lapor-hendi-semarang: lapor_hendi (local_app) → sp4n" in result.output
    assert "sp4n: sp4n (hub)" in result.output


def test_cli_config_check_ok_with_an_absolute_config_path(repo_config_dir: Path):
    result = CliRunner().invoke(app, ["--config", str(repo_config_dir / "gateway.yaml"), "config", "check"], env=ENV)

    assert result.exit_code == 0, result.output
    assert result.output.startswith("ok")
    unwrapped = result.output.replace("\n", "")  # rich folds long lines at 80 columns
    assert str(repo_config_dir / LOCAL) in unwrapped
    assert str(repo_config_dir / HUB) in unwrapped


# -- the hub contract's keys ---------------------------------------------------------------------


def test_a_route_field_the_hub_adapter_sets_itself_is_reported(repo_config_dir: Path):
    text = edit(repo_config_dir / LOCAL, "    location_id: 11 ", "    title: Laporan\n    location_id: 11 ")
    found = issue_for(issues(repo_config_dir), "route.fields.title")
    assert found.line == line_of(text, "title: Laporan") and "sp4n adapter itself" in found.message


def test_a_route_without_the_hubs_location_id_is_reported(repo_config_dir: Path):
    text = edit(repo_config_dir / LOCAL, "    location_id: 11 ", "    # location_id: 11 ")
    found = issue_for(issues(repo_config_dir), "route.fields.location_id")
    assert found.line == line_of(text, "  fields:") and "missing" in found.message


def test_route_fields_keep_their_yaml_types(repo_config_dir: Path):
    edit(
        repo_config_dir / LOCAL,
        "    location_id: 11 ",
        "    is_priority: true\n    info_disposition: null\n    location_id: 11 ",
    )
    fields = (
        load_config(repo_config_dir / "gateway.yaml", environ=ENV).instances["lapor-hendi-semarang"].spec.route.fields
    )
    assert fields["is_priority"] is True and fields["info_disposition"] is None and fields["location_id"] == 11


def test_an_unknown_status_in_status_order_is_reported(repo_config_dir: Path):
    text = edit(repo_config_dir / LOCAL, "  - terverifikasi\n", "  - diverifikasi\n")
    found = issue_for(issues(repo_config_dir), "status_order.1")
    assert found.line == line_of(text, "  - diverifikasi") and "'diverifikasi'" in found.message


def test_an_unknown_status_in_create_at_hub_is_reported(repo_config_dir: Path):
    edit(
        repo_config_dir / LOCAL,
        "statuses: [belum terverifikasi, terverifikasi, dalam proses]",
        "statuses: [belum terverifikasi, menunggu]",
    )
    found = issue_for(issues(repo_config_dir), "route.create_at_hub.statuses.1")
    assert "'menunggu'" in found.message


def test_a_string_where_a_boolean_belongs_is_an_error_not_a_quiet_false(repo_config_dir: Path):
    text = edit(repo_config_dir / LOCAL, "adapter: lapor_hendi\n", 'adapter: lapor_hendi\nenabled: "no"\n')
    found = issue_for(issues(repo_config_dir), "enabled")
    assert found.line == line_of(text, "enabled:")


def test_a_hub_status_is_mapped_by_its_name_whatever_its_case(repo_config_dir: Path):
    hub = load_config(repo_config_dir / "gateway.yaml", environ=ENV).instances["sp4n"].spec
    from gateway import Status

    assert hub.status_of("4", "Ditunda") is Status.ON_HOLD
    assert hub.status_of("4", "  DITUNDA ") is Status.ON_HOLD
    assert hub.status_of("Didisposisi") is Status.FORWARDED  # a log gives the name alone
    assert hub.status_of("99", "Koordinasi") is None


def test_a_bad_identity_pattern_is_reported_with_file_line_and_key(repo_config_dir: Path):
    path = repo_config_dir / LOCAL
    text = set_privacy(path, 'privacy:\n  attachments:\n    identity_names:\n      - ktp\n      - "sim(a"\n')

    issue = issue_for(issues(repo_config_dir), "privacy.attachments.identity_names.1")

    assert issue.file == str(path)
    assert issue.line == line_of(text, '- "sim(a"')
    assert "not a regular expression" in issue.message and "missing )" in issue.message


def test_the_attachment_privacy_block_is_read_from_a_local_app_file(repo_config_dir: Path):
    path = repo_config_dir / LOCAL
    set_privacy(
        path, "privacy:\n  attachments:\n    hold_back_for: [anonymous]\n    identity_names: [ktp, surat domisili]\n"
    )
    config = load_config(repo_config_dir / "gateway.yaml", environ=ENV)
    settings = config.instances["lapor-hendi-semarang"].spec.privacy.attachments
    assert settings.hold_back_for == ["anonymous"] and settings.identity_names == ["ktp", "surat domisili"]
    assert config.instances["sp4n"].spec.privacy.attachments.identity_names[0] == "ktp"  # the defaults


@pytest.mark.parametrize(
    ("block", "needles"),
    [
        (
            "privacy:\n  retention:\n    closed_days: 30\n  attachments:\n    hold_back_for: [anonymous]\n",
            {"privacy.retention": "retention:", "privacy.attachments": "attachments:"},
        ),
        ("privacy: {}\n", {"privacy": "privacy:"}),
    ],
    ids=["retention-and-attachments", "empty"],
)
def test_a_privacy_block_in_a_hubs_file_is_reported_since_nothing_reads_it(repo_config_dir: Path, block, needles):
    """It would seem to keep the hub's side short or its files clean; the local app's block does."""
    path = repo_config_dir / HUB
    text = set_privacy(path, block)

    found = issues(repo_config_dir)

    assert {(i.file, i.key, i.line) for i in found} == {
        (str(path), key, line_of(text, needle)) for key, needle in needles.items()
    }
    assert all(i.message.startswith("privacy applies to local apps") for i in found)
    result = CliRunner().invoke(app, ["--config", str(repo_config_dir / "gateway.yaml"), "config", "check"], env=ENV)
    assert result.exit_code == 1 and f"{path}:{line_of(text, next(iter(needles.values())))}: " in result.output


@pytest.mark.parametrize("value", [" tok-Kp9x-aaaaaaaa", "tok-Kp9x-aaaaaaaa ", "   "])
def test_a_secret_with_a_space_at_an_end_is_reported_without_its_value(repo_config_dir: Path, value: str):
    """Found by the operator review: `SP4N_TOKEN=tok... ` (a space left in the env file) passed
    config check, and every request to the hub was then refused as not valid HTTP (a header may
    not end with a space) after start-up."""
    path = repo_config_dir / HUB
    text = path.read_text()

    found = issues(repo_config_dir, {**ENV, "SP4N_TOKEN": value})

    assert found == [issue_for(found, "secrets.token")]
    assert found[0].file == str(path) and found[0].line == line_of(text, "${SP4N_TOKEN}")
    assert "SP4N_TOKEN starts or ends with a space" in found[0].message
    assert value.strip() == "" or value.strip() not in str(found[0])
