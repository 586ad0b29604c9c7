"""``GET /v1/openapi.json``: the OpenAPI document; ``GET /v1/docs``: a page that renders it."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.urls import reverse

from voxhelm.api.decorators import api_view
from voxhelm.api.openapi import document


@api_view(["GET"], auth="none")
async def openapi_document(request: HttpRequest) -> JsonResponse:
    return JsonResponse(document())


@api_view(["GET"], auth="none")
async def docs_page(request: HttpRequest) -> HttpResponse:
    # Swagger UI from the drf_spectacular_sidecar app's static files: no CDN, works offline.
    # Rendered without the request, so no context processor touches the session.
    return HttpResponse(render_to_string("api/docs.html", {"document": reverse("openapi")}))
