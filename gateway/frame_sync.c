/* frame_sync.c - `sync`: the inbox entries after a seq of an epoch, page by
 * page as the session reads them, then sync_end (recovered or not, the
 * newest seq). The paging is deliver.c's (deliver_sync). */
#include <string.h>

#include "deliver.h"
#include "frame_handlers.h"

void frame_sync(gw_session *s, const proto_frame *f)
{
    char epoch[PROTO_EPOCH_MAX + 1];
    memcpy(epoch, f->epoch.p, f->epoch.len);
    epoch[f->epoch.len] = '\0';
    int rc = deliver_sync(s, f->after, epoch);
    if (rc == -2)
        sess_send_error(s, "rate_limited", "a sync is already under way and another waits", NULL);
    else if (rc < 0)
        frame_unavailable(s, "sync failed: retry later");
}
