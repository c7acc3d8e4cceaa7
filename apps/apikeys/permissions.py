from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from apps.core.problems import Forbidden


class HasScope(BasePermission):
    """Allows the request when the API key holds the view's `required_scope` (or `all`)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        scope = view.required_scope
        if not request.auth.allows(scope):
            raise Forbidden(f"This API key lacks the '{scope}' scope.", kind="insufficient-scope")
        return True
