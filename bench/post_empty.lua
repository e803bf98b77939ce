-- POSTs a small JSON body, for the bare-Flask floor.
wrk.method = "POST"
wrk.body = "{}"
wrk.headers["Content-Type"] = "application/json"
