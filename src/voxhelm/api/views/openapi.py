"""``GET /v1/openapi.json``: the OpenAPI document."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse

from voxhelm.api.decorators import api_view
from voxhelm.api.openapi import document


@api_view(["GET"], auth="none")
async def openapi_document(request: HttpRequest) -> JsonResponse:
    return JsonResponse(document())
