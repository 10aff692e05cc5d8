/*
 * jsonstream.c - the incremental export scanner (see jsonstream.h).
 *
 * A byte-driven pushdown automaton. `expect` says what the structure allows
 * next (a value, a key, a colon, a comma or a closing bracket, the end);
 * `lex` is set while inside a token that spans bytes (string, number,
 * literal), with `sub` as that token's own state, so a token may be split
 * across any number of feeds. Depth 1 is the root object's members: that is
 * where "cost_data" and "currency" are recognised, and depth 2 inside the
 * cost_data array is where elements begin and end.
 *
 * The loops over ordinary string bytes and digits are the hot path: a large
 * export is mostly those.
 */
#include <string.h>

#include "base/text.h"
#include "heliox/docrules.h"

#include "jsonstream.h"

enum expect {
	EXP_ROOT = 0,       /* the document's value (after an optional BOM) */
	EXP_VALUE,          /* after ':' or an array's ',' */
	EXP_VALUE_OR_CLOSE, /* just after '[' */
	EXP_KEY,            /* after an object's ',' */
	EXP_KEY_OR_CLOSE,   /* just after '{' */
	EXP_COLON,          /* after a key */
	EXP_NEXT,           /* after a member or element: ',' or the closing bracket */
	EXP_EOF,            /* after the document's value: only white space */
};

enum lex { LEX_NONE = 0, LEX_STRING, LEX_NUMBER, LEX_LITERAL };

enum str_state { STR_CHAR = 0, STR_ESC, STR_HEX, STR_LOW_BS, STR_LOW_U, STR_LOW_HEX };

/* RFC 8259 number grammar; ZERO, INT, FRAC and EXP may end the number. */
enum num_state { NUM_MINUS, NUM_ZERO, NUM_INT, NUM_DOT, NUM_FRAC, NUM_E, NUM_ESIGN, NUM_EXP };

enum role { ROLE_NONE = 0, ROLE_DATA, ROLE_CURRENCY, ROLE_REPLACE, ROLE_PROVENANCE };

enum span_kind { SPAN_ELEMENT, SPAN_CURRENCY, SPAN_REPLACE, SPAN_PROVENANCE };

/* Where spans begin: members of the root object, elements of cost_data. */
#define DEPTH_MEMBER  1u
#define DEPTH_ELEMENT 2u

/* Stored for a key byte that cannot be part of a key we follow. */
#define KEY_NOT_ASCII '\x80'

static const unsigned char utf8_bom[3] = { 0xEF, 0xBB, 0xBF };

void
jstream_init(jstream *s, size_t max_span)
{
	memset(s, 0, sizeof(*s));
	s->max_span = max_span;
}

const char *
jstream_strerror(jstream_error e)
{
	switch (e) {
	case JSTREAM_ERR_SYNTAX:
		return ("unexpected character");
	case JSTREAM_ERR_NUL:
		return (hx_doc_rule_text(HX_DOC_NUL)); /* the server's words */
	case JSTREAM_ERR_DEPTH:
		return ("nested more than 1000 levels deep");
	case JSTREAM_ERR_TRUNCATED:
		return ("ends early");
	default:
		return ("");
	}
}

uint64_t
jstream_keep_from(const jstream *s)
{
	return (s->retain ? s->span_start : s->pos);
}

/* ---- small helpers ------------------------------------------------------- */

static jstream_event
fail(jstream *s, jstream_error e)
{
	s->error = e;
	s->error_at = s->pos;
	return (JSTREAM_ERROR);
}

static bool
is_digit(char c)
{
	return (c >= '0' && c <= '9');
}

static int
hex_value(char c)
{
	if (is_digit(c)) {
		return (c - '0');
	}
	if (c >= 'a' && c <= 'f') {
		return (c - 'a' + 10);
	}
	if (c >= 'A' && c <= 'F') {
		return (c - 'A' + 10);
	}
	return (-1);
}

/* Moves past k bytes. A span that outgrows max_span stops being kept, so
 * the caller's buffer never has to hold more than max_span of it. */
static void
consume(jstream *s, size_t k)
{
	s->pos += k;
	if (s->retain && s->pos - s->span_start > s->max_span) {
		s->retain = false;
	}
}

/* Only top-level keys are kept, and only as far as ours could match. */
static void
key_byte(jstream *s, char c)
{
	if (!s->is_key || s->depth != DEPTH_MEMBER) {
		return;
	}
	if (s->key_len < JSTREAM_KEY_MAX) {
		s->key[s->key_len] = c;
	}
	if (s->key_len <= JSTREAM_KEY_MAX) {
		s->key_len++;
	}
}

static bool
key_is(const jstream *s, const char *name)
{
	size_t n = strlen(name);

	return (s->key_len == n && memcmp(s->key, name, n) == 0);
}

/* ---- values ---------------------------------------------------------------- */

/* Notes the start of a value we report: a cost_data element, or currency. */
static void
span_begin(jstream *s)
{
	if (s->in_data && s->depth == DEPTH_ELEMENT) {
		s->span_kind = SPAN_ELEMENT;
		s->index = s->n_elements++;
	} else if (s->depth == DEPTH_MEMBER && s->role == ROLE_CURRENCY) {
		s->span_kind = SPAN_CURRENCY;
	} else if (s->depth == DEPTH_MEMBER && s->role == ROLE_REPLACE) {
		s->span_kind = SPAN_REPLACE;
	} else if (s->depth == DEPTH_MEMBER && s->role == ROLE_PROVENANCE) {
		s->span_kind = SPAN_PROVENANCE;
	} else {
		return;
	}
	s->spanning = true;
	s->retain = true;
	s->span_start = s->pos;
}

/* A value has just ended, at the current depth (after its own closing
 * bracket, if it had one). Reports the span when it was the one followed. */
static jstream_event
value_done(jstream *s)
{
	jstream_event ev = JSTREAM_MORE;
	uint32_t      span_depth = s->span_kind == SPAN_ELEMENT ? DEPTH_ELEMENT : DEPTH_MEMBER;

	s->lex = LEX_NONE;
	if (s->spanning && s->depth == span_depth) {
		s->spanning = false;
		s->span_end = s->pos;
		switch (s->span_kind) {
		case SPAN_ELEMENT:
			ev = s->retain ? JSTREAM_ELEMENT : JSTREAM_ELEMENT_TOO_BIG;
			break;
		case SPAN_REPLACE:
			ev = s->retain ? JSTREAM_REPLACE : JSTREAM_REPLACE_TOO_BIG;
			break;
		case SPAN_PROVENANCE:
			ev = s->retain ? JSTREAM_PROVENANCE : JSTREAM_PROVENANCE_TOO_BIG;
			break;
		default:
			ev = s->retain ? JSTREAM_CURRENCY : JSTREAM_CURRENCY_TOO_BIG;
			break;
		}
		s->retain = false;
	}
	if (s->depth == DEPTH_MEMBER) {
		s->role = ROLE_NONE;
	}
	s->expect = s->depth == 0 ? EXP_EOF : EXP_NEXT;
	return (ev);
}

static jstream_event
open_container(jstream *s, char c)
{
	if (s->depth == JSTREAM_MAX_DEPTH) {
		return (fail(s, JSTREAM_ERR_DEPTH));
	}
	s->stack[s->depth++] = c;
	if (c == '[' && s->depth == DEPTH_ELEMENT && s->role == ROLE_DATA) {
		s->in_data = true;
	}
	s->expect = c == '{' ? EXP_KEY_OR_CLOSE : EXP_VALUE_OR_CLOSE;
	consume(s, 1);
	return (JSTREAM_MORE);
}

static jstream_event
close_container(jstream *s, char c)
{
	char open = c == '}' ? '{' : '[';

	if (s->depth == 0 || s->stack[s->depth - 1] != open) {
		return (fail(s, JSTREAM_ERR_SYNTAX));
	}
	if (s->in_data && s->depth == DEPTH_ELEMENT) {
		s->in_data = false;
	}
	s->depth--;
	consume(s, 1);
	return (value_done(s));
}

/* The value of the first top-level "cost_data" decides what data is. */
static void
classify_data(jstream *s, char c)
{
	if (s->depth != DEPTH_MEMBER || s->role != ROLE_DATA) {
		return;
	}
	if (c == '[') {
		s->data = JSTREAM_DATA_ARRAY;
	} else if (c == 'n') {
		s->data = JSTREAM_DATA_NULL; /* a misspelt null fails as syntax */
	} else {
		s->data = JSTREAM_DATA_OTHER;
	}
}

static jstream_event
begin_token(jstream *s, enum lex lex, uint8_t sub)
{
	s->lex = (uint8_t) lex;
	s->sub = sub;
	consume(s, 1);
	return (JSTREAM_MORE);
}

static jstream_event
begin_value(jstream *s, char c)
{
	if (s->depth == 0) {
		s->root_object = c == '{';
	}
	span_begin(s);
	classify_data(s, c);
	switch (c) {
	case '{':
	case '[':
		return (open_container(s, c));
	case '"':
		s->is_key = false;
		return (begin_token(s, LEX_STRING, STR_CHAR));
	case '-':
		return (begin_token(s, LEX_NUMBER, NUM_MINUS));
	case '0':
		return (begin_token(s, LEX_NUMBER, NUM_ZERO));
	case 't':
		s->literal = "true";
		return (begin_token(s, LEX_LITERAL, 1));
	case 'f':
		s->literal = "false";
		return (begin_token(s, LEX_LITERAL, 1));
	case 'n':
		s->literal = "null";
		return (begin_token(s, LEX_LITERAL, 1));
	default:
		if (is_digit(c)) {
			return (begin_token(s, LEX_NUMBER, NUM_INT));
		}
		return (fail(s, JSTREAM_ERR_SYNTAX));
	}
}

/* ---- strings ---------------------------------------------------------------- */

/* A key has ended: at depth 1 it may name one of the members we follow. */
static void
key_done(jstream *s)
{
	s->lex = LEX_NONE;
	s->expect = EXP_COLON;
	if (s->depth != DEPTH_MEMBER) {
		return;
	}
	s->role = ROLE_NONE;
	if (key_is(s, "cost_data") && !s->seen_data) {
		s->seen_data = true;
		s->role = ROLE_DATA;
	} else if (key_is(s, "currency") && !s->seen_currency) {
		s->seen_currency = true;
		s->role = ROLE_CURRENCY;
	} else if (key_is(s, "replace") && !s->seen_replace) {
		s->seen_replace = true;
		s->role = ROLE_REPLACE;
	} else if (key_is(s, "provenance") && !s->seen_provenance) {
		s->seen_provenance = true;
		s->role = ROLE_PROVENANCE;
	}
}

static jstream_event
string_end(jstream *s)
{
	consume(s, 1);
	if (s->is_key) {
		key_done(s);
		return (JSTREAM_MORE);
	}
	return (value_done(s));
}

static jstream_event
escape_char(jstream *s, char c)
{
	static const char from[] = "\"\\/bfnrt";
	static const char to[] = "\"\\/\b\f\n\r\t";
	const char       *at = c != '\0' ? strchr(from, c) : NULL;

	if (c == 'u') {
		s->sub = STR_HEX;
		s->nhex = 0;
		s->unit = 0;
	} else if (at != NULL) {
		key_byte(s, to[at - from]);
		s->sub = STR_CHAR;
	} else {
		return (fail(s, JSTREAM_ERR_SYNTAX));
	}
	consume(s, 1);
	return (JSTREAM_MORE);
}

/*
 * A \uXXXX code unit is complete. As in cJSON, a high surrogate must be
 * followed by a low one, and a lone low surrogate is an error. \u0000 is
 * fine here: the server reads it as \u0001 (src/core/export.c, so that cJSON does
 * not cut the string short) and the record rules refuse it on its field; in
 * a key it is compared as that \u0001 too.
 */
static jstream_event
unit_done(jstream *s)
{
	bool low = s->unit >= 0xDC00 && s->unit <= 0xDFFF;
	bool high = s->unit >= 0xD800 && s->unit <= 0xDBFF;

	if (s->sub == STR_LOW_HEX) {
		if (!low) {
			return (fail(s, JSTREAM_ERR_SYNTAX));
		}
		key_byte(s, KEY_NOT_ASCII);
		s->sub = STR_CHAR;
		return (JSTREAM_MORE);
	}
	if (low) {
		return (fail(s, JSTREAM_ERR_SYNTAX));
	}
	if (high) {
		s->sub = STR_LOW_BS;
		return (JSTREAM_MORE);
	}
	if (s->unit == 0) {
		key_byte(s, '\x01');
	} else if (s->unit < 0x80) {
		key_byte(s, (char) s->unit);
	} else {
		key_byte(s, KEY_NOT_ASCII);
	}
	s->sub = STR_CHAR;
	return (JSTREAM_MORE);
}

/* One hex digit of a \u escape; the error position of a bad unit is its
 * last digit. */
static jstream_event
hex_digit(jstream *s, char c)
{
	int v = hex_value(c);

	if (v < 0) {
		return (fail(s, JSTREAM_ERR_SYNTAX));
	}
	s->unit = (uint16_t) ((unsigned) s->unit << 4 | (unsigned) v);
	if (++s->nhex == 4 && unit_done(s) == JSTREAM_ERROR) {
		return (JSTREAM_ERROR);
	}
	consume(s, 1);
	return (JSTREAM_MORE);
}

/* Ordinary string bytes, as many as there are: the hot loop. Control bytes
 * pass (cJSON takes them; the record rules name them); NUL stops the run and
 * is refused by the caller. */
static size_t
plain_run(jstream *s, const char *p, size_t n)
{
	size_t j = 0;

	if (s->is_key && s->depth == DEPTH_MEMBER) {
		while (j < n && p[j] != '"' && p[j] != '\\' && p[j] != '\0') {
			key_byte(s, p[j++]);
		}
		return (j);
	}
	while (j < n && p[j] != '"' && p[j] != '\\' && p[j] != '\0') {
		j++;
	}
	return (j);
}

/* The \u that must follow a high surrogate: first '\\', then 'u'. */
static jstream_event
low_prefix(jstream *s, char c)
{
	if (c != (s->sub == STR_LOW_BS ? '\\' : 'u')) {
		return (fail(s, JSTREAM_ERR_SYNTAX));
	}
	s->sub = s->sub == STR_LOW_BS ? STR_LOW_U : STR_LOW_HEX;
	s->nhex = 0;
	s->unit = 0;
	consume(s, 1);
	return (JSTREAM_MORE);
}

static jstream_event
string_step(jstream *s, const char *p, size_t n)
{
	char c = p[0];

	switch (s->sub) {
	case STR_CHAR:
		if (c == '"') {
			return (string_end(s));
		}
		if (c == '\\') {
			s->sub = STR_ESC;
			consume(s, 1);
			return (JSTREAM_MORE);
		}
		consume(s, plain_run(s, p, n));
		return (JSTREAM_MORE);
	case STR_ESC:
		return (escape_char(s, c));
	case STR_LOW_BS:
	case STR_LOW_U:
		return (low_prefix(s, c));
	default: /* STR_HEX, STR_LOW_HEX */
		return (hex_digit(s, c));
	}
}

/* ---- numbers and literals ------------------------------------------------- */

/* The state after c, or -1 when c cannot continue the number. */
static int
num_next(uint8_t st, char c)
{
	bool digit = is_digit(c), e = c == 'e' || c == 'E';

	switch (st) {
	case NUM_MINUS:
		return (c == '0' ? NUM_ZERO : digit ? NUM_INT : -1);
	case NUM_ZERO:
		return (c == '.' ? NUM_DOT : e ? NUM_E : -1);
	case NUM_INT:
		return (digit ? NUM_INT : c == '.' ? NUM_DOT : e ? NUM_E : -1);
	case NUM_DOT:
		return (digit ? NUM_FRAC : -1);
	case NUM_FRAC:
		return (digit ? NUM_FRAC : e ? NUM_E : -1);
	case NUM_E:
		return (c == '+' || c == '-' ? NUM_ESIGN : digit ? NUM_EXP : -1);
	default: /* NUM_ESIGN, NUM_EXP */
		return (digit ? NUM_EXP : -1);
	}
}

static bool
num_can_end(uint8_t st)
{
	return (st == NUM_ZERO || st == NUM_INT || st == NUM_FRAC || st == NUM_EXP);
}

/* A number ends at the first byte that cannot continue it; that byte is
 * left for the structure to read. */
static jstream_event
number_step(jstream *s, const char *p, size_t n)
{
	size_t j = 0;
	int    next;

	if (s->sub == NUM_INT || s->sub == NUM_FRAC || s->sub == NUM_EXP) {
		while (j < n && is_digit(p[j])) {
			j++;
		}
		if (j > 0) {
			consume(s, j);
			return (JSTREAM_MORE);
		}
	}
	if ((next = num_next(s->sub, p[0])) >= 0) {
		s->sub = (uint8_t) next;
		consume(s, 1);
		return (JSTREAM_MORE);
	}
	if (num_can_end(s->sub)) {
		return (value_done(s));
	}
	return (fail(s, JSTREAM_ERR_SYNTAX));
}

static jstream_event
literal_step(jstream *s, char c)
{
	if (c != s->literal[s->sub]) {
		return (fail(s, JSTREAM_ERR_SYNTAX));
	}
	consume(s, 1);
	if (s->literal[++s->sub] == '\0') {
		return (value_done(s));
	}
	return (JSTREAM_MORE);
}

/* ---- structure ------------------------------------------------------------ */

/* Before the document's value: white space, and a UTF-8 BOM at offset 0
 * (cJSON skips one there too). */
static jstream_event
root_char(jstream *s, char c)
{
	if (s->pos == s->bom && s->bom < 3 && (unsigned char) c == utf8_bom[s->bom]) {
		s->bom++;
		consume(s, 1);
		return (JSTREAM_MORE);
	}
	if (s->bom != 0 && s->bom != 3) {
		return (fail(s, JSTREAM_ERR_SYNTAX));
	}
	return (begin_value(s, c));
}

static jstream_event
begin_key(jstream *s, char c)
{
	if (c != '"') {
		return (fail(s, JSTREAM_ERR_SYNTAX));
	}
	s->is_key = true;
	s->key_len = 0;
	return (begin_token(s, LEX_STRING, STR_CHAR));
}

static jstream_event
after_value(jstream *s, char c)
{
	if (c == '}' || c == ']') {
		return (close_container(s, c));
	}
	if (c != ',') {
		return (fail(s, JSTREAM_ERR_SYNTAX));
	}
	s->expect = s->stack[s->depth - 1] == '{' ? EXP_KEY : EXP_VALUE;
	consume(s, 1);
	return (JSTREAM_MORE);
}

static jstream_event
structure_step(jstream *s, const char *p, size_t n)
{
	size_t j = 0;
	char   c = p[0];

	/* RFC 8259's white space is the four bytes a name is trimmed of. */
	while (j < n && hx_text_is_space(p[j])) {
		j++;
	}
	if (j > 0) {
		consume(s, j);
		return (JSTREAM_MORE);
	}
	switch (s->expect) {
	case EXP_ROOT:
		return (root_char(s, c));
	case EXP_VALUE:
		return (begin_value(s, c));
	case EXP_VALUE_OR_CLOSE:
		return (c == ']' ? close_container(s, c) : begin_value(s, c));
	case EXP_KEY_OR_CLOSE:
		return (c == '}' ? close_container(s, c) : begin_key(s, c));
	case EXP_KEY:
		return (begin_key(s, c));
	case EXP_COLON:
		if (c != ':') {
			return (fail(s, JSTREAM_ERR_SYNTAX));
		}
		s->expect = EXP_VALUE;
		consume(s, 1);
		return (JSTREAM_MORE);
	case EXP_NEXT:
		return (after_value(s, c));
	default: /* EXP_EOF: only white space may follow the document */
		return (fail(s, JSTREAM_ERR_SYNTAX));
	}
}

/* ---- driving ---------------------------------------------------------------- */

static jstream_event
step(jstream *s, const char *p, size_t n)
{
	/* Checked first everywhere: the server refuses a NUL before parsing. */
	if (p[0] == '\0') {
		return (fail(s, JSTREAM_ERR_NUL));
	}
	switch (s->lex) {
	case LEX_STRING:
		return (string_step(s, p, n));
	case LEX_NUMBER:
		return (number_step(s, p, n));
	case LEX_LITERAL:
		return (literal_step(s, p[0]));
	default:
		return (structure_step(s, p, n));
	}
}

/* Every step consumes through consume(), so s->pos says how far we got. */
jstream_event
jstream_feed(jstream *s, const char *p, size_t n, size_t *used)
{
	uint64_t      base = s->pos;
	jstream_event ev = s->error != JSTREAM_ERR_NONE ? JSTREAM_ERROR : JSTREAM_MORE;
	size_t        done = 0;

	while (ev == JSTREAM_MORE && done < n) {
		ev = step(s, p + done, n - done);
		done = (size_t) (s->pos - base);
	}
	*used = done;
	return (ev);
}

jstream_event
jstream_finish(jstream *s)
{
	if (s->error != JSTREAM_ERR_NONE) {
		return (JSTREAM_ERROR);
	}
	/* A number can only end when something follows it, or here. */
	if (s->lex == LEX_NUMBER && num_can_end(s->sub)) {
		(void) value_done(s);
	}
	if (s->lex == LEX_NONE && s->expect == EXP_EOF) {
		return (JSTREAM_END);
	}
	return (fail(s, JSTREAM_ERR_TRUNCATED));
}
