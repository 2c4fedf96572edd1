"""``GET /api/v1/tracks``: the track catalogue, through a real server on loopback."""

from __future__ import annotations

import httpx

from rewards_api.envs.catalogue import catalogue_json

V1 = "/api/v1"


def test_the_server_lists_the_track_catalogue(api: httpx.Client) -> None:
    answer = api.get(f"{V1}/tracks")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/json")
    body = answer.json()
    assert body == {"status": 200, **catalogue_json()}
    assert len(body["tracks"]) >= 12
    by_name = {track["name"]: track for track in body["tracks"]}
    assert by_name["gauntlet"]["mode"] == "evaluation" and by_name["gauntlet"]["difficulty"] == "expert"
    assert by_name["training-2"]["track"] == "2" and by_name["training-2"]["reference_lap_time"] > 5
    # The original listing is untouched: the three training tracks' file names.
    assert api.get(f"{V1}/get_all_tracks").json() == ["track-1.png", "track-2.png", "track-3.png"]


def test_the_catalogue_needs_the_token_and_is_documented(server) -> None:
    refused = httpx.get(f"{server.url}{V1}/tracks")
    assert refused.status_code == 401 and refused.json()["status"] == 401
    document = httpx.get(f"{server.url}/openapi.json").json()
    answers = document["paths"][f"{V1}/tracks"]["get"]["responses"]
    assert answers["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/TrackCatalogueResponse")
    fields = document["components"]["schemas"]["TrackInfoModel"]["properties"]
    assert set(fields) == set(catalogue_json()["tracks"][0])
