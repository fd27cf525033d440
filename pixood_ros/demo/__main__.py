import sys

from pixood_ros.demo.run import main

sys.exit(main())
