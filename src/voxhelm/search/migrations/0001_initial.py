"""The segment table, its text index for the database in use, and the jobs done before it.

SQLite: an FTS5 table over the segment table's text (external content), kept in step by
triggers, so every way a row goes (a job deleted, its rows replaced) reaches the index.
PostgreSQL: a stored generated column ``tsv``, the text's ``to_tsvector('simple', ...)``
(computed once per row, not again for each search that ranks it), with a GIN index. Neither
is a field of the model: the ORM writes the text, the database the rest. Then every succeeded transcription job is indexed from its stored
``transcript.json`` (its text alone when the store cannot be read: logged, never fatal).
"""

from typing import Any

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from voxhelm import boundedjson
from voxhelm.search.index import SegmentText, segments_from_json, segments_from_text
from voxhelm.storage.base import StoreError
from voxhelm.storage.stores import store_for_identity

SQLITE_CREATE = [
    "CREATE VIRTUAL TABLE voxhelm_search_segment_fts USING fts5(text, "
    "content='voxhelm_search_segment', content_rowid='id', "
    "tokenize='unicode61 remove_diacritics 0')",
    "CREATE TRIGGER voxhelm_search_segment_ai AFTER INSERT ON voxhelm_search_segment BEGIN "
    "INSERT INTO voxhelm_search_segment_fts(rowid, text) VALUES (new.id, new.text); END",
    "CREATE TRIGGER voxhelm_search_segment_ad AFTER DELETE ON voxhelm_search_segment BEGIN "
    "INSERT INTO voxhelm_search_segment_fts(voxhelm_search_segment_fts, rowid, text) "
    "VALUES ('delete', old.id, old.text); END",
    "CREATE TRIGGER voxhelm_search_segment_au AFTER UPDATE ON voxhelm_search_segment BEGIN "
    "INSERT INTO voxhelm_search_segment_fts(voxhelm_search_segment_fts, rowid, text) "
    "VALUES ('delete', old.id, old.text); "
    "INSERT INTO voxhelm_search_segment_fts(rowid, text) VALUES (new.id, new.text); END",
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS voxhelm_search_segment_au",
    "DROP TRIGGER IF EXISTS voxhelm_search_segment_ad",
    "DROP TRIGGER IF EXISTS voxhelm_search_segment_ai",
    "DROP TABLE IF EXISTS voxhelm_search_segment_fts",
]
POSTGRES_CREATE = [
    "ALTER TABLE voxhelm_search_segment ADD COLUMN tsv tsvector "
    "GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, text)) STORED",
    "CREATE INDEX voxhelm_search_segment_tsv ON voxhelm_search_segment USING GIN (tsv)",
]
POSTGRES_DROP = [
    "DROP INDEX IF EXISTS voxhelm_search_segment_tsv",
    "ALTER TABLE voxhelm_search_segment DROP COLUMN IF EXISTS tsv",
]


def _run(schema_editor: Any, by_vendor: dict[str, list[str]]) -> None:
    for statement in by_vendor.get(schema_editor.connection.vendor, []):
        schema_editor.execute(statement)


def create_text_index(apps: Any, schema_editor: Any) -> None:
    _run(schema_editor, {"sqlite": SQLITE_CREATE, "postgresql": POSTGRES_CREATE})


def drop_text_index(apps: Any, schema_editor: Any) -> None:
    _run(schema_editor, {"sqlite": SQLITE_DROP, "postgresql": POSTGRES_DROP})


def _segments(artifact: Any, text: str, config: Any) -> list[SegmentText]:
    if artifact is not None:
        try:
            store = store_for_identity(artifact.storage_identity, config.artifacts)
            with store.open(artifact.storage_key) as stream:
                payload = boundedjson.decode_object(stream.read(), subject="transcript.json")
            return segments_from_json(payload)
        except (StoreError, OSError, ValueError):
            pass  # the text alone; indexing again (a correction) brings the segments
    return segments_from_text(text)


def index_finished_jobs(apps: Any, schema_editor: Any) -> None:
    job_model = apps.get_model("voxhelm_jobs", "Job")
    artifact_model = apps.get_model("voxhelm_artifacts", "JobArtifact")
    segment_model = apps.get_model("voxhelm_search", "IndexedSegment")
    config = settings.VOXHELM
    alias = schema_editor.connection.alias
    jobs = job_model.objects.using(alias).filter(state="succeeded", job_type="transcribe")
    for job in jobs.only("id", "producer", "result_text").iterator():
        artifact = (
            artifact_model.objects.using(alias)
            .filter(job_id=job.pk, format="json", exposed=True)
            .first()
        )
        segment_model.objects.using(alias).bulk_create(
            [
                segment_model(
                    job_id=job.pk,
                    producer=job.producer,
                    position=segment.position,
                    start=segment.start,
                    end=segment.end,
                    speaker=segment.speaker,
                    text=segment.text,
                )
                for segment in _segments(artifact, job.result_text, config)
            ]
        )


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("voxhelm_jobs", "0007_job_choices"),
        ("voxhelm_artifacts", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="IndexedSegment",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("producer", models.CharField(max_length=255)),
                ("position", models.PositiveIntegerField()),
                ("start", models.FloatField()),
                ("end", models.FloatField()),
                ("speaker", models.CharField(blank=True, max_length=255)),
                ("text", models.TextField()),
                (
                    "job",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="voxhelm_jobs.job",
                    ),
                ),
            ],
            options={
                "db_table": "voxhelm_search_segment",
                "ordering": ["job", "position"],
                "indexes": [models.Index(fields=["producer"], name="search_segment_producer")],
            },
        ),
        migrations.RunPython(create_text_index, drop_text_index),
        migrations.RunPython(index_finished_jobs, migrations.RunPython.noop),
    ]
