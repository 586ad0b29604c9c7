"""Multipart files too large for memory, spooled to a work folder until the request ends.

Django's own handler writes them to ``tmp*.upload`` files in the temp dir, which a process
killed mid-request (SIGKILL, OOM) leaves behind for good. This one writes each file into a
:class:`~voxhelm.workdirs.Workdir` of its own, so the sweep of the next process to start
removes it (``FILE_UPLOAD_HANDLERS`` in the settings; staged uploads stream to the store
instead, see :mod:`voxhelm.uploads.staging`).
"""

from __future__ import annotations

from typing import Any

from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler

from voxhelm.workdirs import Workdir

FILE_NAME = "upload"


class SpooledUpload(UploadedFile):
    """An uploaded file on disk, in a work folder removed when the file is closed."""

    def __init__(
        self,
        name: str,
        content_type: str,
        size: int,
        charset: str | None,
        content_type_extra: dict[str, Any] | None = None,
    ) -> None:
        self.workdir = Workdir("upload")
        try:
            file = (self.workdir.path / FILE_NAME).open("w+b")
        except BaseException:
            self.workdir.remove()
            raise
        super().__init__(file, name, content_type, size, charset, content_type_extra)

    def temporary_file_path(self) -> str:
        return str(self.workdir.path / FILE_NAME)

    def close(self) -> None:
        try:
            if self.file is not None:
                self.file.close()
        finally:
            self.workdir.remove()


class SpoolingUploadHandler(FileUploadHandler):
    """Django's stream-to-disk handler (``TemporaryFileUploadHandler``), with each file in a
    work folder."""

    file: SpooledUpload

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        super().new_file(*args, **kwargs)
        self.file = SpooledUpload(
            self.file_name or FILE_NAME,
            self.content_type or "application/octet-stream",
            0,
            self.charset,
            self.content_type_extra,
        )

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        self.file.write(raw_data)

    def file_complete(self, file_size: int) -> SpooledUpload:
        self.file.seek(0)
        self.file.size = file_size
        return self.file

    def upload_interrupted(self) -> None:
        if hasattr(self, "file"):
            self.file.close()
