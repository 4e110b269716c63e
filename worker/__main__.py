import asyncio
import contextlib

from worker.main import main

with contextlib.suppress(KeyboardInterrupt):
    asyncio.run(main())
