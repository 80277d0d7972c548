// How many keys (one per line on stdin) Kafka's Java partitioner moves when a topic
// grows from args[0] to args[1] partitions. Prints "MOVED DISTINCT".
// Run with the broker's jars on the class path: java -cp 'libs/*' JavaKeysMoving.java 3 6
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.HashSet;
import java.util.Set;
import org.apache.kafka.common.utils.Utils;

public class JavaKeysMoving {
    public static void main(String[] args) throws Exception {
        int before = Integer.parseInt(args[0]);
        int after = Integer.parseInt(args[1]);
        BufferedReader in =
                new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        Set<String> keys = new HashSet<>();
        for (String line; (line = in.readLine()) != null; ) {
            if (!line.isEmpty()) {
                keys.add(line);
            }
        }
        int moved = 0;
        for (String key : keys) {
            int hash = Utils.toPositive(Utils.murmur2(key.getBytes(StandardCharsets.UTF_8)));
            if (hash % before != hash % after) {
                moved++;
            }
        }
        System.out.println(moved + " " + keys.size());
    }
}
