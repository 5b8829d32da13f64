mkdir -p docs boot
yes 'seed readme line' | head -c 6000 >docs/readme.txt
yes 'seed config line' | head -c 2000 >boot/config.txt
yes 'seed initrd line' | head -c 300000 >boot/initrd.img
