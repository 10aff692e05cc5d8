/*
 * api.h - HX_API marks the functions libheliox-client exports.
 *
 * The library is built with hidden visibility by default, so that only what
 * the installed headers declare is in its dynamic symbol table: not the
 * generated protobuf-c code, not the helpers the library shares with the
 * server. Every function declared in an installed header carries HX_API.
 */
#ifndef HELIOX_API_H
#define HELIOX_API_H

#if defined(__GNUC__) || defined(__clang__)
#define HX_API __attribute__((visibility("default")))
#else
#define HX_API
#endif

#endif /* HELIOX_API_H */
