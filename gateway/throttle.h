/* throttle.h - attempt budgets for logins, registrations and password
 * changes, shared by every gateway through Redis (common/lua/throttle.lua).
 *
 * Three fixed-window counters, each expiring --throttle-window seconds after
 * its first attempt (docs/protocol.md, "Login throttling"):
 *   per client address (--throttle-addr): failed logins, failed password
 *     changes and registrations that did not create an account;
 *   per account and client address (--throttle-account-addr): failed logins
 *     and password changes of that account from that address: one guesser
 *     is stopped without locking the owner out from elsewhere;
 *   per account (--throttle-account): the same from every address: a
 *     guesser spread over many addresses is slowed to this many guesses per
 *     window for the account, at the price of the owner waiting too.
 * A register counts against the address only (the name is not an account
 * yet). Unknown and known names are counted alike, so the answers tell
 * nothing about which names exist. A budget of 0 is off.
 *
 * How a route uses it (login in account.c; the password change the same way
 * with THROTTLE_PASSWORD and the session's user name):
 *   1. clientaddr_of(wsi, addr, ...);
 *   2. throttle_take(kind, user, addr, cb, priv): every counter goes up by
 *      one before the attempt (so parallel attempts cannot pass a budget);
 *      cb(priv, wait_s) later, or the return says at once;
 *   3. wait_s > 0: answer throttle_refuse's 429 (Retry-After: wait_s);
 *      wait_s < 0: 503; 0: run the attempt (pwpool_submit_from with addr);
 *   4. on success (and when the attempt did not run: a full pool) call
 *      throttle_refund(kind, user, addr): a success costs nothing. A failure
 *      keeps its count until the window ends.
 * Counting happens before the work, in one script call per attempt; Redis
 * unreachable answers 503 (the attempt could not be counted, so it does not
 * run). */
#ifndef PARLEY_GW_THROTTLE_H
#define PARLEY_GW_THROTTLE_H

typedef enum {
    THROTTLE_LOGIN,    /* POST /api/login: address, account, account from address */
    THROTTLE_REGISTER, /* POST /api/register: address only */
    THROTTLE_PASSWORD, /* POST /api/password: as a login (the same counters) */
} throttle_kind;

typedef struct throttle_config {
    long long window_s;     /* --throttle-window: seconds (>= 1) */
    long long addr;         /* --throttle-addr: per client address and window (0: off) */
    long long account;      /* --throttle-account: per account, all addresses (0: off) */
    long long account_addr; /* --throttle-account-addr: per account and address (0: off) */
} throttle_config;

/* wait_s: 0 go on; > 0 refused, the Retry-After in seconds; < 0 Redis did
 * not answer (answer 503; nothing was counted). Runs on the loop. */
typedef void throttle_cb(void *priv, int wait_s);

void throttle_init(const throttle_config *c);

/* Takes one attempt of kind for user (a valid name; ignored for
 * THROTTLE_REGISTER) from addr (clientaddr.h text). Returns 0 when cb will
 * be called (exactly once), 1 when no budget applies (go on now; cb is not
 * called), -1 when Redis is unreachable (answer 503; cb is not called). */
int throttle_take(throttle_kind kind, const char *user, const char *addr, throttle_cb *cb,
                  void *priv);
/* The attempt succeeded (or never ran): what throttle_take counted goes back
 * down. Fire and forget (a refund lost with Redis only means one more count
 * until the window ends). */
void throttle_refund(throttle_kind kind, const char *user, const char *addr);

/* The 429 text of a refusal (for req_error_retry). */
#define THROTTLE_MESSAGE "too many attempts: retry after the time given"

#endif
