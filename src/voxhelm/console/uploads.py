"""``POST /uploads``: the console's script stages a file too large for the form.

The same path and caps as ``POST /v1/uploads`` (``voxhelm.uploads.staging``: streamed into
the artifact store, ``VOXHELM_BATCH_MAX_STAGED_UPLOAD_BYTES``), for the signed-in operator's
producer ``operator:<name>``; the page shows the upload's progress, then submits the form
naming the staged file, which becomes a batch job. Answers JSON, errors in the envelope.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.views.decorators.csrf import csrf_exempt

from voxhelm.api.errors import ApiError, response_for_exception
from voxhelm.console.operators import producer_for
from voxhelm.console.views import operator_view
from voxhelm.units import human_bytes
from voxhelm.uploads.staging import stage_off_loop

CSRF_FAILED = "The page's session ended; reload the page and choose the file again."


def _unused(request: HttpRequest) -> HttpResponse:
    """The view the CSRF check is asked about: any that is not exempt."""
    return HttpResponse()


def _check_csrf(request: HttpRequest) -> None:
    """Django's CSRF check, run once the body is parsed.

    The middleware would parse the body itself (``request.POST``) before this view could
    give it the staging handler, spooling the whole file to a temporary file first; so the
    view is exempt and checks here, after the file streamed to the store. A refused
    request's file is deleted by ``stage``. A forged cross-site request never gets this far:
    the session cookie is SameSite=Lax, and the body gate wants an operator's session.
    """
    refusal = CsrfViewMiddleware(_unused).process_view(request, _unused, (), {})
    if refusal is not None:
        raise ApiError(403, CSRF_FAILED, type="permission_error", code="csrf_failed")


@operator_view(["POST"], body="staged")
@csrf_exempt  # checked after parsing: see _check_csrf
async def stage_upload(request: HttpRequest) -> HttpResponse:
    if not (request.content_type or "").startswith("multipart/form-data"):
        return response_for_exception(
            request, ApiError(400, "Send the file as multipart/form-data.", code="invalid_body")
        )
    producer = producer_for(await request.auser())
    try:
        upload = await stage_off_loop(request, producer, settings.VOXHELM, verify=_check_csrf)
    except Exception as exc:  # the script reads every answer as JSON
        return response_for_exception(request, exc)
    body = {
        "id": str(upload.pk),
        "filename": upload.filename,
        "size_bytes": upload.size_bytes,
        "size": human_bytes(upload.size_bytes),
    }
    return JsonResponse(body, status=201)
