"""VOXHELM_* environment -> typed, validated configuration objects (framework-free).

Every setting is read here, once. ``docs/configuration.md`` is the reference for users; a
test keeps it in step with the names read below. Cross-setting rules live in
``voxhelm.checks`` (Django system checks) and use the objects built here.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from voxhelm.envparse import ConfigError, EnvReader, Problem

__all__ = ["Config", "ConfigError", "Problem", "load_config"]

MIB = 1024 * 1024
OPERATOR_UI_PRODUCER = "__operator_ui__"  # reserved producer label for console jobs
OPERATOR_PRODUCER_PREFIX = "operator:"  # console jobs belong to "operator:<username>"
STT_BACKENDS = ("fasterwhisper", "whispercpp", "mlx", "whisperkit")
LOCAL_EXECUTION = "django_tasks"  # the local workers (Django Tasks)
REMOTE_EXECUTION = "remote_pull"  # remote pull workers
EXECUTION_MODES = (LOCAL_EXECUTION, REMOTE_EXECUTION)
ARTIFACT_BACKENDS = ("filesystem", "s3")
DIARIZATION_BACKENDS = ("none", "onnx", "pyannote")


def is_apple_silicon() -> bool:
    return platform.system() == "Darwin" and platform.machine() == "arm64"


@dataclass(frozen=True)
class PathsConfig:
    var_dir: Path  # VOXHELM_VAR_DIR: state of the embedded default (database, secrets, artifacts)
    database_path: Path  # VOXHELM_DATABASE_PATH: the SQLite file
    database_url: str  # DATABASE_URL: PostgreSQL for multi-host set-ups; empty = SQLite


@dataclass(frozen=True)
class HttpConfig:
    allowed_hosts: tuple[str, ...]
    csrf_trusted_origins: tuple[str, ...]
    debug: bool
    log_level: str
    log_format: str = "text"  # text | json (one JSON object per line)
    https_only: bool = False  # redirect plain HTTP to HTTPS; Secure cookies always
    hsts_seconds: int = 0  # Strict-Transport-Security max-age; 0 sends no header
    header_timeout_seconds: float = 10.0  # a request head must be complete within this
    min_body_rate: int = 1024  # bytes/s a body must arrive at, judged over 10 s windows
    max_connections: int = 1000  # open HTTP connections (kept below the descriptor limit)


@dataclass(frozen=True)
class AuthConfig:
    bearer_tokens: dict[str, str]  # label -> token (producers)
    worker_tokens: dict[str, str]  # worker_id -> token (remote pull workers)
    bearer_tokens_set: bool  # whether VOXHELM_BEARER_TOKENS was given at all
    metrics_token: str = ""  # bearer token for GET /metrics; "" = /metrics is off


@dataclass(frozen=True)
class LimitsConfig:
    max_upload_bytes: int
    max_url_download_bytes: int
    url_fetch_timeout_seconds: int
    batch_max_download_bytes: int
    batch_max_staged_upload_bytes: int
    staged_input_retention_seconds: int
    max_audio_seconds: int
    tts_max_input_chars: int


@dataclass(frozen=True)
class WebhookConfig:
    """Job callbacks (``callback_url``): signed POSTs through the guarded fetcher."""

    secret: str  # HMAC-SHA256 key; "" = callbacks are refused at submission
    allowed_hosts: frozenset[str]  # lowercased; defaults to the media URL allowlist
    max_attempts: int
    timeout_seconds: float


@dataclass(frozen=True)
class FetchConfig:
    allowed_url_hosts: frozenset[str]  # lowercased, trailing dot removed
    trusted_http_hosts: frozenset[str]


@dataclass(frozen=True)
class FasterWhisperConfig:
    model: str  # "" = the bundled tiny.en model
    device: str  # auto | cpu | cuda
    compute_type: str  # auto = int8 on CPU, float16 on CUDA
    beam_size: int
    batch_size: int  # windows of one request decoded in one batched call (1 = one by one)
    cpu_threads: int  # 0 = the cores shared out among the workers (at least 1 each)
    num_workers: int  # engine calls one process runs at the same time
    vad_filter: bool
    condition_on_previous_text: bool


@dataclass(frozen=True)
class WhisperCppConfig:
    bin: str
    model: str
    processors: int
    max_context: int
    suppress_nst: bool


@dataclass(frozen=True)
class MlxConfig:
    model: str
    condition_on_previous_text: bool


@dataclass(frozen=True)
class WhisperKitConfig:
    enabled: bool
    host: str
    port: int
    base_url: str
    model: str
    timeout_seconds: int
    audio_encoder_compute_units: str
    text_decoder_compute_units: str
    concurrent_worker_count: int
    chunking_strategy: str
    api_key: str  # bearer token for the server; "" = none


@dataclass(frozen=True)
class SttConfig:
    backend: str
    fallback_backend: str  # "" = no fallback
    debug_logging: bool
    model_cache_dir: Path
    max_concurrency: int  # inference calls running at once in one process
    max_waiting: int  # requests allowed to wait for a slot before 429
    ffmpeg_bin: str
    fasterwhisper: FasterWhisperConfig
    whispercpp: WhisperCppConfig
    mlx: MlxConfig
    whisperkit: WhisperKitConfig
    hotwords: tuple[str, ...] = ()  # vocabulary given to every transcription
    model_idle_seconds: float = 0.0  # unload models idle this long; 0 = keep them loaded
    model_auto_pull: bool = False  # a request for a model not installed pulls it (and waits)


@dataclass(frozen=True)
class DiarizationConfig:
    backend: str
    pyannote_model: str
    pyannote_device: str
    huggingface_token: str


@dataclass(frozen=True)
class WyomingConfig:
    host: str
    port: int
    backend: str
    model: str
    language: str
    languages: tuple[str, ...]
    prompt: str
    normalize_transcript: bool
    samples_per_chunk: int
    vad: bool  # skip the model when Silero VAD hears no speech
    early_decode: bool  # decode during the trailing silence, before audio-stop
    max_audio_seconds: int  # audio per request; longer gets an error event
    idle_timeout_seconds: float  # a connection silent this long is closed
    max_connections: int  # concurrent connections; excess ones get an error event


@dataclass(frozen=True)
class LanesConfig:
    enabled: bool
    directory: Path
    stale_seconds: int  # read for compatibility; slots are OS locks, never reclaimed by age
    slots: int  # inference slots shared by every process of the host
    interactive_slots: int  # more slots that only interactive (Wyoming) work may use
    wait_seconds: float  # longest wait for a slot before Busy (HTTP 429)


@dataclass(frozen=True)
class TtsConfig:
    backend: str
    piper_voice_dir: Path  # VOXHELM_TTS_VOICES_DIR (alias VOXHELM_PIPER_VOICE_DIR)
    piper_voices: tuple[str, ...]
    piper_default_voice: str
    piper_language_voices: dict[str, str]


@dataclass(frozen=True)
class ArtifactsConfig:
    backend: str
    root: Path
    prefix: str
    bucket: str
    s3_endpoint_url: str
    s3_access_key_id: str
    s3_secret_access_key: str
    s3_region: str
    s3_force_path_style: bool


@dataclass(frozen=True)
class ExecutionConfig:
    transcription_mode: str
    synthesis_mode: str  # VOXHELM_SYNTHESIS_EXECUTION_MODE; default: the transcription mode
    tasks_backend: str
    task_queue: str
    lease_seconds: int
    poll_seconds: int
    max_attempts: int
    job_heartbeat_seconds: float  # how often a running batch job proves its worker is alive
    job_stale_seconds: float  # a running job silent this long is re-queued or failed
    job_sweep_seconds: float  # how often each worker looks for such jobs


@dataclass(frozen=True)
class ChunkConfig:
    chunk_seconds: float  # batch audio longer than this is cut into chunks at pauses
    workers: int  # chunks of one job transcribed at the same time


@dataclass(frozen=True)
class RemoteWorkerConfig:
    worker_id: str
    worker_token: str
    base_url: str


@dataclass(frozen=True)
class OperatorConfig:
    bootstrap_username: str
    bootstrap_email: str
    bootstrap_password: str
    console_sync_max_seconds: int  # longer console audio runs as a batch job
    login_max_failures: int  # failed sign-ins before a lockout
    login_lockout_seconds: int  # how long a lockout lasts
    login_account_max_failures: int = 50  # failures for one username, from any address


@dataclass(frozen=True)
class Config:
    """The whole service configuration. ``problems`` lists invalid settings, if any."""

    paths: PathsConfig
    http: HttpConfig
    secret_key: str  # DJANGO_SECRET_KEY; "" = generated and kept under var/
    auth: AuthConfig
    limits: LimitsConfig
    fetch: FetchConfig
    stt: SttConfig
    diarization: DiarizationConfig
    wyoming: WyomingConfig
    lanes: LanesConfig
    tts: TtsConfig
    artifacts: ArtifactsConfig
    execution: ExecutionConfig
    chunks: ChunkConfig
    remote_worker: RemoteWorkerConfig
    operator: OperatorConfig
    webhooks: WebhookConfig
    problems: tuple[Problem, ...] = ()
    names_read: frozenset[str] = field(default=frozenset(), compare=False)

    def raise_for_problems(self) -> None:
        if self.problems:
            raise ConfigError(self.problems)


def _webhooks(env: EnvReader, fetch: FetchConfig) -> WebhookConfig:
    return WebhookConfig(
        secret=env.secret("VOXHELM_WEBHOOK_SECRET"),
        allowed_hosts=_hosts(env, "VOXHELM_WEBHOOK_ALLOWED_HOSTS") or fetch.allowed_url_hosts,
        max_attempts=env.integer("VOXHELM_WEBHOOK_MAX_ATTEMPTS", 8, minimum=1, maximum=50),
        timeout_seconds=env.number("VOXHELM_WEBHOOK_TIMEOUT_SECONDS", 10.0, minimum=0.5),
    )


def normalize_host(host: str) -> str:
    """Lowercase a host name and drop one trailing dot (``Example.COM.`` -> ``example.com``)."""
    host = host.strip().lower()
    return host[:-1] if host.endswith(".") else host


def _hosts(env: EnvReader, name: str) -> frozenset[str]:
    return frozenset(normalize_host(host) for host in env.items(name))


def _path(env: EnvReader, name: str, default: Path) -> Path:
    """A folder or file setting; ``~`` is expanded."""
    return Path(env.string(name, str(default))).expanduser()


def _paths(env: EnvReader) -> PathsConfig:
    var_dir = _path(env, "VOXHELM_VAR_DIR", Path.cwd() / "var")
    database_path = _path(env, "VOXHELM_DATABASE_PATH", var_dir / "db.sqlite3")
    database_url = env.secret("DATABASE_URL")
    if database_url and not database_url.startswith(("postgres://", "postgresql://")):
        env.fail("DATABASE_URL", "only postgres:// or postgresql:// URLs are supported.")
        database_url = ""
    return PathsConfig(var_dir.resolve(), database_path.resolve(), database_url)


def _stt(env: EnvReader, var_dir: Path, lanes: LanesConfig) -> SttConfig:
    default_fallback = "mlx" if is_apple_silicon() else ""
    backend = env.choice("VOXHELM_STT_BACKEND", "fasterwhisper", STT_BACKENDS)
    fallback = env.raw("VOXHELM_STT_FALLBACK_BACKEND")
    if fallback is None:
        fallback_backend = default_fallback if "VOXHELM_STT_FALLBACK_BACKEND" not in env.env else ""
    elif fallback.lower() in ("none", "off"):
        fallback_backend = ""
    else:
        fallback_backend = env.choice("VOXHELM_STT_FALLBACK_BACKEND", "", STT_BACKENDS)
    port = env.integer("VOXHELM_WHISPERKIT_PORT", 50060, minimum=1, maximum=65535)
    return SttConfig(
        backend=backend,
        fallback_backend=fallback_backend,
        debug_logging=env.boolean("VOXHELM_STT_DEBUG_LOGGING", False),
        model_cache_dir=_path(env, "VOXHELM_MODEL_CACHE_DIR", var_dir / "models"),
        max_concurrency=env.integer("VOXHELM_STT_MAX_CONCURRENCY", 1, minimum=1),
        max_waiting=env.integer("VOXHELM_STT_MAX_WAITING", 8, minimum=0),
        ffmpeg_bin=env.string("VOXHELM_FFMPEG_BIN", "ffmpeg"),
        fasterwhisper=FasterWhisperConfig(
            model=env.string("VOXHELM_FASTERWHISPER_MODEL", ""),
            device=env.choice("VOXHELM_FASTERWHISPER_DEVICE", "auto", ("auto", "cpu", "cuda")),
            compute_type=env.string("VOXHELM_FASTERWHISPER_COMPUTE_TYPE", "auto").lower(),
            beam_size=env.integer("VOXHELM_FASTERWHISPER_BEAM_SIZE", 5, minimum=1, maximum=20),
            batch_size=env.integer("VOXHELM_FASTERWHISPER_BATCH_SIZE", 2, minimum=1, maximum=64),
            cpu_threads=env.integer("VOXHELM_FASTERWHISPER_CPU_THREADS", 0, minimum=0),
            # One engine call per slot a process may hold at once.
            num_workers=env.integer(
                "VOXHELM_FASTERWHISPER_NUM_WORKERS",
                lanes.slots + lanes.interactive_slots if lanes.enabled else 1,
                minimum=1,
                maximum=64,
            ),
            vad_filter=env.boolean("VOXHELM_FASTERWHISPER_VAD_FILTER", False),
            condition_on_previous_text=env.boolean(
                "VOXHELM_FASTERWHISPER_CONDITION_ON_PREVIOUS_TEXT", False
            ),
        ),
        whispercpp=WhisperCppConfig(
            bin=env.string("VOXHELM_WHISPERCPP_BIN", "whisper-cli"),
            model=env.string("VOXHELM_WHISPERCPP_MODEL", "ggml-large-v3.bin"),
            processors=env.integer("VOXHELM_WHISPERCPP_PROCESSORS", 1, minimum=1),
            max_context=env.integer("VOXHELM_WHISPERCPP_MAX_CONTEXT", 0, minimum=-1),
            suppress_nst=env.boolean("VOXHELM_WHISPERCPP_SUPPRESS_NST", True),
        ),
        mlx=MlxConfig(
            model=env.string("VOXHELM_MLX_MODEL", "mlx-community/whisper-large-v3-mlx"),
            condition_on_previous_text=env.boolean("VOXHELM_MLX_CONDITION_ON_PREVIOUS_TEXT", False),
        ),
        whisperkit=WhisperKitConfig(
            enabled=env.boolean("VOXHELM_WHISPERKIT_ENABLED", False),
            host=env.string("VOXHELM_WHISPERKIT_HOST", "127.0.0.1"),
            port=port,
            base_url=env.string("VOXHELM_WHISPERKIT_BASE_URL", f"http://127.0.0.1:{port}/v1"),
            model=env.string("VOXHELM_WHISPERKIT_MODEL", "large-v3-v20240930"),
            timeout_seconds=env.integer("VOXHELM_WHISPERKIT_TIMEOUT_SECONDS", 900, minimum=1),
            audio_encoder_compute_units=env.string(
                "VOXHELM_WHISPERKIT_AUDIO_ENCODER_COMPUTE_UNITS", "cpuAndGPU"
            ),
            text_decoder_compute_units=env.string(
                "VOXHELM_WHISPERKIT_TEXT_DECODER_COMPUTE_UNITS", "cpuAndGPU"
            ),
            concurrent_worker_count=env.integer(
                "VOXHELM_WHISPERKIT_CONCURRENT_WORKER_COUNT", 8, minimum=1
            ),
            chunking_strategy=env.string("VOXHELM_WHISPERKIT_CHUNKING_STRATEGY", "vad"),
            api_key=env.secret("VOXHELM_WHISPERKIT_API_KEY"),
        ),
        hotwords=env.items("VOXHELM_STT_HOTWORDS"),
        model_idle_seconds=env.number("VOXHELM_MODEL_IDLE_SECONDS", 0.0, minimum=0.0),
        model_auto_pull=env.boolean("VOXHELM_MODEL_AUTO_PULL", False),
    )


def _artifacts(env: EnvReader, var_dir: Path) -> ArtifactsConfig:
    return ArtifactsConfig(
        backend=env.choice("VOXHELM_ARTIFACT_BACKEND", "filesystem", ARTIFACT_BACKENDS),
        root=_path(env, "VOXHELM_ARTIFACT_ROOT", var_dir / "artifacts"),
        prefix=env.string("VOXHELM_ARTIFACT_PREFIX", "voxhelm").strip("/"),
        bucket=env.string("VOXHELM_ARTIFACT_BUCKET", "voxhelm"),
        s3_endpoint_url=env.string("VOXHELM_ARTIFACT_S3_ENDPOINT_URL"),
        s3_access_key_id=env.secret("VOXHELM_ARTIFACT_S3_ACCESS_KEY_ID"),
        s3_secret_access_key=env.secret("VOXHELM_ARTIFACT_S3_SECRET_ACCESS_KEY"),
        s3_region=env.string("VOXHELM_ARTIFACT_S3_REGION", "us-east-1"),
        s3_force_path_style=env.boolean("VOXHELM_ARTIFACT_S3_FORCE_PATH_STYLE", True),
    )


def load_config(environ: Mapping[str, str] | None = None) -> Config:
    """Parse the environment (``os.environ`` by default) into a :class:`Config`.

    Never raises for bad values: they are collected in ``Config.problems`` so that every
    problem can be reported at once. Call ``raise_for_problems()`` to refuse to run.
    """
    env = EnvReader(os.environ if environ is None else environ)
    paths = _paths(env)
    var_dir = paths.var_dir

    http = HttpConfig(
        allowed_hosts=env.items("VOXHELM_ALLOWED_HOSTS", ("localhost", "127.0.0.1", "[::1]")),
        csrf_trusted_origins=env.items("VOXHELM_CSRF_TRUSTED_ORIGINS"),
        debug=env.boolean("VOXHELM_DEBUG", False),
        log_level=env.choice(
            "VOXHELM_LOG_LEVEL", "info", ("debug", "info", "warning", "error", "critical")
        ),
        log_format=env.choice("VOXHELM_LOG_FORMAT", "text", ("text", "json")),
        https_only=env.boolean("VOXHELM_HTTPS_ONLY", False),
        hsts_seconds=env.integer("VOXHELM_HSTS_SECONDS", 0, minimum=0),
        header_timeout_seconds=env.number("VOXHELM_HTTP_HEADER_TIMEOUT_SECONDS", 10.0, minimum=0.5),
        min_body_rate=env.integer("VOXHELM_HTTP_MIN_BODY_RATE", 1024, minimum=0),
        max_connections=env.integer("VOXHELM_HTTP_MAX_CONNECTIONS", 1000, minimum=16),
    )
    auth = AuthConfig(
        bearer_tokens=env.token_map("VOXHELM_BEARER_TOKENS"),
        worker_tokens=env.token_map("VOXHELM_WORKER_TOKENS"),
        bearer_tokens_set=env.is_set("VOXHELM_BEARER_TOKENS"),
        metrics_token=env.secret("VOXHELM_METRICS_TOKEN"),
    )
    limits = LimitsConfig(
        max_upload_bytes=env.integer("VOXHELM_MAX_UPLOAD_BYTES", 25 * MIB, minimum=1),
        max_url_download_bytes=env.integer("VOXHELM_MAX_URL_DOWNLOAD_BYTES", 128 * MIB, minimum=1),
        url_fetch_timeout_seconds=env.integer("VOXHELM_URL_FETCH_TIMEOUT_SECONDS", 60, minimum=1),
        batch_max_download_bytes=env.integer(
            "VOXHELM_BATCH_MAX_DOWNLOAD_BYTES", 512 * MIB, minimum=1
        ),
        batch_max_staged_upload_bytes=env.integer(
            "VOXHELM_BATCH_MAX_STAGED_UPLOAD_BYTES", 512 * MIB, minimum=1
        ),
        staged_input_retention_seconds=env.integer(
            "VOXHELM_STAGED_INPUT_RETENTION_SECONDS", 86400, minimum=1
        ),
        max_audio_seconds=env.integer("VOXHELM_MAX_AUDIO_SECONDS", 4 * 3600, minimum=1),
        tts_max_input_chars=env.integer("VOXHELM_TTS_MAX_INPUT_CHARS", 5000, minimum=1),
    )
    fetch = FetchConfig(
        allowed_url_hosts=_hosts(env, "VOXHELM_ALLOWED_URL_HOSTS"),
        trusted_http_hosts=_hosts(env, "VOXHELM_TRUSTED_HTTP_HOSTS"),
    )
    diarization = DiarizationConfig(
        # The embedded engine needs no account or download: diarization works out of the box.
        backend=env.choice("VOXHELM_DIARIZATION_BACKEND", "onnx", DIARIZATION_BACKENDS),
        pyannote_model=env.string("VOXHELM_PYANNOTE_MODEL", "pyannote/speaker-diarization-3.1"),
        pyannote_device=env.choice(
            "VOXHELM_PYANNOTE_DEVICE", "auto", ("auto", "cpu", "cuda", "mps")
        ),
        huggingface_token=env.secret("VOXHELM_HUGGINGFACE_TOKEN") or env.secret("HF_TOKEN"),
    )
    wyoming = WyomingConfig(
        host=env.string("VOXHELM_WYOMING_STT_HOST", "0.0.0.0"),  # noqa: S104 - HA is on the LAN
        port=env.integer("VOXHELM_WYOMING_STT_PORT", 10300, minimum=1, maximum=65535),
        backend=env.string("VOXHELM_WYOMING_STT_BACKEND").lower(),
        model=env.string("VOXHELM_WYOMING_STT_MODEL"),
        language=env.string("VOXHELM_WYOMING_STT_LANGUAGE"),
        languages=env.items("VOXHELM_WYOMING_STT_LANGUAGES"),
        prompt=env.string("VOXHELM_WYOMING_STT_PROMPT"),
        normalize_transcript=env.boolean("VOXHELM_WYOMING_STT_NORMALIZE_TRANSCRIPT", True),
        samples_per_chunk=env.integer("VOXHELM_WYOMING_SAMPLES_PER_CHUNK", 1024, minimum=1),
        vad=env.boolean("VOXHELM_WYOMING_STT_VAD", True),
        early_decode=env.boolean("VOXHELM_WYOMING_STT_EARLY_DECODE", True),
        max_audio_seconds=env.integer(
            "VOXHELM_WYOMING_STT_MAX_AUDIO_SECONDS", 60, minimum=1, maximum=600
        ),
        idle_timeout_seconds=env.number("VOXHELM_WYOMING_IDLE_TIMEOUT_SECONDS", 30.0, minimum=0.1),
        max_connections=env.integer("VOXHELM_WYOMING_MAX_CONNECTIONS", 64, minimum=1),
    )
    if wyoming.backend and wyoming.backend not in STT_BACKENDS:
        env.fail(
            "VOXHELM_WYOMING_STT_BACKEND",
            f"must be one of {', '.join(STT_BACKENDS)}; got {wyoming.backend!r}.",
        )
    lanes = LanesConfig(
        enabled=env.boolean("VOXHELM_LANE_SCHEDULER_ENABLED", True),
        directory=_path(env, "VOXHELM_LANE_SCHEDULER_DIR", var_dir / "lane-scheduler"),
        stale_seconds=env.integer("VOXHELM_LANE_SCHEDULER_STALE_SECONDS", 1800, minimum=1),
        slots=env.integer("VOXHELM_LANE_SLOTS", 2, minimum=1, maximum=64),
        interactive_slots=env.integer("VOXHELM_LANE_INTERACTIVE_SLOTS", 1, minimum=0, maximum=64),
        wait_seconds=env.number("VOXHELM_LANE_WAIT_SECONDS", 30.0, minimum=0.1),
    )
    tts = TtsConfig(
        backend=env.choice("VOXHELM_TTS_BACKEND", "piper", ("piper", "auto", "tts-1", "tts-1-hd")),
        # VOXHELM_TTS_VOICES_DIR is the current name; the reference's name still works.
        piper_voice_dir=Path(
            env.string("VOXHELM_TTS_VOICES_DIR")
            or env.string("VOXHELM_PIPER_VOICE_DIR", str(var_dir / "piper"))
        ).expanduser(),
        piper_voices=env.items("VOXHELM_PIPER_VOICES"),
        piper_default_voice=env.string("VOXHELM_PIPER_DEFAULT_VOICE"),
        piper_language_voices={
            k.lower().replace("-", "_"): v
            for k, v in env.mapping("VOXHELM_PIPER_LANGUAGE_VOICES").items()
        },
    )
    transcription_mode = env.choice(
        "VOXHELM_TRANSCRIPTION_EXECUTION_MODE", LOCAL_EXECUTION, EXECUTION_MODES
    )
    execution = ExecutionConfig(
        transcription_mode=transcription_mode,
        synthesis_mode=env.choice(
            "VOXHELM_SYNTHESIS_EXECUTION_MODE", transcription_mode, EXECUTION_MODES
        ),
        tasks_backend=env.string("VOXHELM_TASKS_BACKEND", "django_tasks_db.DatabaseBackend"),
        task_queue=env.string("VOXHELM_TASK_QUEUE", "default"),
        lease_seconds=env.integer("VOXHELM_REMOTE_WORKER_LEASE_SECONDS", 1800, minimum=1),
        poll_seconds=env.integer("VOXHELM_REMOTE_WORKER_POLL_SECONDS", 5, minimum=1),
        max_attempts=env.integer("VOXHELM_REMOTE_WORKER_MAX_ATTEMPTS", 3, minimum=1),
        job_heartbeat_seconds=env.number("VOXHELM_JOB_HEARTBEAT_SECONDS", 5.0, minimum=0.1),
        job_stale_seconds=env.number("VOXHELM_JOB_STALE_SECONDS", 30.0, minimum=1.0),
        job_sweep_seconds=env.number("VOXHELM_JOB_SWEEP_SECONDS", 10.0, minimum=0.1),
    )
    chunks = ChunkConfig(
        chunk_seconds=env.number("VOXHELM_CHUNK_SECONDS", 600.0, minimum=10.0),
        workers=env.integer("VOXHELM_CHUNK_WORKERS", 2, minimum=1, maximum=64),
    )
    remote_worker = RemoteWorkerConfig(
        worker_id=env.string("VOXHELM_WORKER_ID"),
        worker_token=env.secret("VOXHELM_WORKER_TOKEN"),
        base_url=env.string("VOXHELM_WORKER_BASE_URL") or env.string("VOXHELM_BASE_URL"),
    )
    operator = OperatorConfig(
        bootstrap_username=env.string("VOXHELM_BOOTSTRAP_OPERATOR_USERNAME", "jochen"),
        bootstrap_email=env.string("VOXHELM_BOOTSTRAP_OPERATOR_EMAIL"),
        bootstrap_password=env.secret("VOXHELM_BOOTSTRAP_OPERATOR_PASSWORD"),
        console_sync_max_seconds=env.integer("VOXHELM_CONSOLE_SYNC_MAX_SECONDS", 600, minimum=1),
        login_max_failures=env.integer("VOXHELM_LOGIN_MAX_FAILURES", 5, minimum=1),
        login_lockout_seconds=env.integer("VOXHELM_LOGIN_LOCKOUT_SECONDS", 900, minimum=1),
        login_account_max_failures=env.integer("VOXHELM_LOGIN_ACCOUNT_MAX_FAILURES", 50, minimum=1),
    )
    return Config(
        paths=paths,
        http=http,
        secret_key=env.secret("DJANGO_SECRET_KEY"),
        auth=auth,
        limits=limits,
        fetch=fetch,
        stt=_stt(env, var_dir, lanes),
        diarization=diarization,
        wyoming=wyoming,
        lanes=lanes,
        tts=tts,
        artifacts=_artifacts(env, var_dir),
        execution=execution,
        chunks=chunks,
        remote_worker=remote_worker,
        operator=operator,
        webhooks=_webhooks(env, fetch),
        problems=tuple(env.problems),
        names_read=frozenset(env.names),
    )
