// Package api holds the wire types of the chain: the signed transaction
// envelope and its calls, message-queue messages, registry records, query
// paths, genesis state, result codes and signing contexts. It is shared by
// the node, pRuntime, the relayer and the client SDK, and holds no logic
// beyond encoding, decoding and hashing.
//
// # Encoding
//
// Everything is encoded with package codec (compact binary, canonical). Every
// Decode function takes untrusted bytes: it enforces size limits, refuses
// trailing bytes, and accepts only bytes that re-encode identically.
//
// # Signatures
//
// Each signed structure has its own [crypto.Context], declared in this
// package (see contexts.go), so a signature made for one purpose can never be
// replayed as another.
package api
