"""Python peer: the seed's POST /api/getPhone with wechatpy under uvicorn (FastAPI), the way a Python team writes it.

Settings (environment): WX_APPID, WX_SECRET, WECHAT_BASE_URL (the simulator, e.g. http://127.0.0.1:19001/).
Run: uvicorn app:app --workers 2 --no-access-log --log-level warning (bench/run does this).

Flow, as the seed: jscode2session, then getuserphonenumber, one after the other. The access token is cached the way
wechatpy does by default: per process, in its MemoryStorage, fetched from /cgi-bin/token when missing, no lock.
The session token is a random hex string kept in a dict in memory; nothing is written to a database.
"""

import os
import secrets

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from wechatpy import WeChatClient
from wechatpy.client.api import WeChatWxa
from wechatpy.exceptions import WeChatClientException

BASE = os.environ["WECHAT_BASE_URL"].rstrip("/") + "/"
SESSION_TTL = 30 * 24 * 3600

# Only the base URL is patched (the host of api.weixin.qq.com becomes the simulator's).
WeChatWxa.API_BASE_URL = BASE
WeChatClient.API_BASE_URL = BASE + "cgi-bin/"


class SimClient(WeChatClient):
    # wechatpy hard-codes the host in fetch_access_token; the same call against the simulator.
    def fetch_access_token(self):
        return self._fetch_access_token(
            url=BASE + "cgi-bin/token",
            params={"grant_type": "client_credential", "appid": self.appid, "secret": self.secret},
        )


client = SimClient(os.environ["WX_APPID"], os.environ["WX_SECRET"])
sessions: dict[str, str] = {}
app = FastAPI()


class GetPhoneBody(BaseModel):
    loginCode: str
    phoneCode: str


def fail(status: int, code: int, msg: str) -> JSONResponse:
    return JSONResponse({"code": code, "msg": msg}, status_code=status)


@app.exception_handler(RequestValidationError)
async def bad_body(request: Request, exc: RequestValidationError):
    return fail(400, 400, "参数错误")


@app.get("/healthz")
async def healthz():
    # The pid tells the harness which worker answered, so it can wait until every worker is up.
    return {"pid": os.getpid()}


# A plain `def`: wechatpy is blocking (requests), so FastAPI runs it in its thread pool.
@app.post("/api/getPhone")
def get_phone(body: GetPhoneBody):
    try:
        session = client.wxa.code_to_session(body.loginCode)
        info = client.wxa._post("wxa/business/getuserphonenumber", data={"code": body.phoneCode})
    except WeChatClientException as e:
        return fail(502, e.errcode or -1, "微信接口错误")
    except Exception:  # network errors from requests, unexpected answers
        return fail(500, -1, "服务器错误")
    phone = info["phone_info"]["phoneNumber"]
    token = secrets.token_hex(32)
    sessions[token] = session["openid"]
    return {
        "code": 0,
        "msg": "success",
        "data": {"phone": phone, "openid": session["openid"], "token": token, "expiresIn": SESSION_TTL},
    }
