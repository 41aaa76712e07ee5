import sys

from vlm_rl.gpu_check.driver import main

sys.exit(main())
