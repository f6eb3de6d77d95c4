package httpapi

import (
	"possync/appliance"
)

// codeBusy is the code of the refusal of a connection beyond
// http.max_conns (listener.go). It is the HTTP layer's own: no engine or
// store error has it.
const codeBusy = "busy"

// errorName maps an appliance error code to the Odoo/werkzeug exception
// name sent in error.data.name, and the HTTP status. This is the only place
// codes become statuses.
func errorName(code string) (name string, status int) {
	switch code {
	case appliance.EINVALID:
		return "werkzeug.exceptions.BadRequest", 200
	case appliance.ENOTFOUND:
		return "werkzeug.exceptions.NotFound", 404
	case appliance.EUNAVAILABLE:
		return "possync.exceptions.StoreUnavailable", 200
	case appliance.EFORBIDDEN:
		return "werkzeug.exceptions.Forbidden", 403
	case appliance.ELIMIT:
		return "possync.exceptions.LimitReached", 200
	case codeBusy:
		return "possync.exceptions.ServerBusy", 503
	default:
		return "possync.exceptions.InternalError", 200
	}
}

// appendRPCError writes a JSON-RPC error in the Odoo 12 shape (§2.3).
func appendRPCError(dst []byte, id []byte, code, msg string) []byte {
	name, status := errorName(code)
	rpcCode, rpcMsg := 200, "Odoo Server Error"
	switch status {
	case 404:
		rpcCode, rpcMsg = 404, "404: Not Found"
	case 403:
		rpcCode, rpcMsg = 403, "403: Forbidden"
	}
	dst = append(dst, `{"jsonrpc":"2.0","id":`...)
	dst = appendID(dst, id)
	dst = append(dst, `,"error":{"code":`...)
	dst = appendInt(dst, rpcCode)
	dst = append(dst, `,"message":`...)
	dst = appendJSONString(dst, rpcMsg)
	dst = append(dst, `,"data":{"name":`...)
	dst = appendJSONString(dst, name)
	dst = append(dst, `,"message":`...)
	dst = appendJSONString(dst, msg)
	dst = append(dst, `,"arguments":[`...)
	dst = appendJSONString(dst, msg)
	dst = append(dst, `],"debug":`...)
	dst = appendJSONString(dst, "possync "+appliance.Version+": "+msg)
	dst = append(dst, `,"exception_type":"internal_error","context":{}}}}`...)
	return dst
}
