"""Taking files in: find them, read and hash them, record them in the database, hand their ids on.

    filters      which paths to take: no temporary or system files, the include and exclude globs
    walk         every candidate file under the named paths, streaming, in growing chunks
    files        what one file is: stat, read and hash it (FileRecord), refusing links out of the roots
    record       Intake: record a chunk of files in one transaction, then dispatch the pending ids
    dispatch     the Dispatcher interface pending ids are handed to
    embedded     the embedded-mode dispatcher: classify them in this process
    distributed  the distributed-mode dispatcher: queue them for Celery workers by task name
    scan         the one-shot scan loop behind `fakewatch scan` and `enqueue`: walk, record, dispatch, summarise

The watcher (:mod:`fakewatch.watcher`) and the web console's uploads use the same intake.
"""
