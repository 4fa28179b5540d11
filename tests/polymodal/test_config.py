import pytest

from polymodal.config import Config, load_config
from polymodal.errors import ConfigError


def test_default_config_round_trips_through_toml(tmp_path):
    c = Config()
    c.llm.backend = "openai"
    c.llm.base_url = "http://127.0.0.1:11434/v1"
    c.kb.chunk_tokens = 128
    c.diffusion.guidance = 1.5
    c.app.ingest_roots = ["~/Documents", "/srv/photos"]
    path = c.save(tmp_path / "config.toml")
    again = load_config(path)
    assert again == c
    assert Config.from_dict(c.to_dict()) == c


def test_partial_file_keeps_defaults(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('[llm]\nmodel = "/models/x.gguf"\n[diffusion]\nguidance = 2\n')
    c = load_config(p)
    assert c.llm.model == "/models/x.gguf" and c.llm.backend == "llama_cpp"
    assert c.diffusion.guidance == 2.0 and isinstance(c.diffusion.guidance, float)


@pytest.mark.parametrize(
    "text,match",
    [
        ("[llm]\nmodle = 'x'\n", "unknown config key"),
        ("[kb]\nchunk_tokens = 'many'\n", "must be int"),
        ("[kb\n", "not valid TOML"),
        ("llm = 3\n", "must be a table"),
        ("[app]\ningest_roots = '/srv'\n", "'app.ingest_roots' must be a list"),
        ("[app]\ningest_roots = ['/srv', 3]\n", r"'app.ingest_roots\[1\]' must be str"),
    ],
)
def test_bad_config_is_one_clear_line(tmp_path, text, match):
    p = tmp_path / "c.toml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=match) as err:
        load_config(p)
    assert "\n" not in str(err.value)


def test_missing_explicit_config_is_an_error_but_missing_default_is_not(tmp_path, monkeypatch):
    with pytest.raises(ConfigError):
        load_config(tmp_path / "nope.toml")
    monkeypatch.setenv("POLYMODAL_CONFIG", str(tmp_path / "absent.toml"))
    assert load_config() == Config()


def test_derived_paths_follow_home(tmp_path, monkeypatch):
    monkeypatch.setenv("POLYMODAL_HOME", str(tmp_path))
    c = Config()
    assert c.kb_path() == tmp_path / "kb"
    c.kb.path = str(tmp_path / "elsewhere")
    assert c.kb_path() == tmp_path / "elsewhere"


def test_empty_environment_variables_count_as_unset(monkeypatch, tmp_path):
    from pathlib import Path

    from polymodal.config import PathsConfig

    monkeypatch.setenv("POLYMODAL_HOME", "")
    monkeypatch.setenv("POLYMODAL_CACHE", "")
    assert PathsConfig().data() == Path.home() / ".polymodal"
    assert PathsConfig().cache() == Path.home() / ".cache" / "polymodal"
