# The earlier library's program (shared/seed/repo-examples/starlette/app.py), a test input: only its imports are changed
# (keycloak.* -> kc names); on Starlette 1.x the test also imports Starlette from kc_starlette.seed. Do not tidy it: tests/integration/test_seed_programs.py runs it.
# ruff: noqa
# fmt: off
# -*- coding: utf-8 -*-
import uvicorn
from starlette.applications import Starlette
from starlette.middleware.sessions import SessionMiddleware
from starlette.responses import PlainTextResponse
from kc_starlette import AuthenticationMiddleware


app = Starlette()
app.add_middleware(
    AuthenticationMiddleware,
    callback_url="http://localhost:8000/kc/callback",
    login_redirect_uri="/home",
    logout_redirect_uri="/logout",
)
app.add_middleware(SessionMiddleware, secret_key="key0123456789")


@app.route("/home")
def home(request):
    user = request.session["user"]
    return PlainTextResponse(f"Howdy {user}!")


@app.route("/logout")
def logout(request):
    return PlainTextResponse("User logged out successfully")


if __name__ == "__main__":
    uvicorn.run(app)
